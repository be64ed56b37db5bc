"""Choosing each generated token: greedy or from the request's own seed, under the row's
grammar mask when guided, stopped at the row's own token cap, with its log-prob recorded.
``generate`` only carries out the choices (see :class:`Decoder`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dialogym.envs import derive_seed

from ..base import Request, Sampling


class Decoder:
    """Chooses each row's next token and records its log-prob, one step at a time.

    Under a grammar (guided rows) the forbidden tokens' logits are set to -inf first, and a
    sampled row's logits are then tempered and top-p filtered: the recorded log-prob is the
    one under the distribution the token was drawn from (masked, tempered, truncated and
    renormalised), which is what an on-policy trainer's ratio needs. Greedy rows record the
    raw distribution's (masked) log-prob. Greedy rows take the arg-max; sampled rows draw from their own request's
    seed (inverse CDF of the tempered, top-p filtered distribution), so a reply is the same
    whichever requests share its batch. Each row draws its uniforms up front from a
    generator seeded with its request's seed (unseeded requests: from the batch's seeds and
    their position). The scores returned are 0 for the chosen token and -inf elsewhere, for
    ``generate``'s greedy step to pick; only the chosen token's log-prob is kept (no
    (batch x steps x vocabulary) tensor of logits).
    """

    def __init__(self, requests: Sequence[Request], sampling: Sampling, prompt_width: int, device: str,
                 masks: Any = None, stop_id: int | None = None, skip: Sequence[int] | None = None) -> None:
        import torch
        from transformers import TemperatureLogitsWarper, TopPLogitsWarper

        self.width = prompt_width
        self.masks = masks
        self.greedy = sampling.greedy
        self.chosen: list[int] = []
        self._logprobs: list[Any] = []
        # Rows whose own cap is below the batch's (``sampling.max_new_tokens``) get ``stop_id``
        # at their cap, which ends them; the caller keeps only their first ``cap`` tokens.
        caps = [r.sampling.max_new_tokens for r in requests]
        self.caps = torch.tensor(caps, device=device) if stop_id is not None and min(caps) < sampling.max_new_tokens else None
        self.stop_id = stop_id
        if self.greedy:
            return

        # ``skip[row]``: tokens of the row's reply already written (forced by its grammar, see
        # :class:`~dialogym.agents.guidance.Choice`); its steps here draw the uniforms after theirs
        skip = skip if skip is not None else [0] * len(requests)
        batch = [r.seed if r.seed is not None else 0 for r in requests]
        uniforms = torch.zeros((len(requests), sampling.max_new_tokens), dtype=torch.float64)
        for row, (request, done) in enumerate(zip(requests, skip, strict=True)):
            seed = request.seed if request.seed is not None else derive_seed(*batch, row)
            generator = torch.Generator().manual_seed(seed % (2**63 - 1))
            cap = min(request.sampling.max_new_tokens, sampling.max_new_tokens + done)
            uniforms[row, : max(0, cap - done)] = torch.rand(cap, generator=generator, dtype=torch.float64)[done:]
        self.uniforms = uniforms.to(device)
        self.warpers = [TemperatureLogitsWarper(sampling.temperature)]
        if sampling.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(sampling.top_p))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        step = input_ids.shape[1] - self.width
        if self.masks is not None:
            if step > 0:
                # a row generate has finished (end of sequence, stop string) shows padding
                # where its chosen token would be: its matcher stops there
                last = input_ids[:, -1].tolist()
                self.masks.advance(last, [got != want for got, want in zip(last, self.chosen, strict=True)])
            allowed = self.masks.allowed().to(scores.device)
            scores = scores.masked_fill(~allowed[:, : scores.shape[-1]], float("-inf"))
        if self.greedy:
            token = scores.argmax(dim=-1, keepdim=True)
        else:
            warped = scores
            for warper in self.warpers:
                warped = warper(input_ids, warped)
            scores = warped  # the log-prob is recorded under the distribution the token is drawn from
            cdf = torch.softmax(warped.double(), dim=-1).cumsum(dim=-1)
            drawn = self.uniforms[:, step : step + 1] * cdf[:, -1:]
            token = torch.searchsorted(cdf, drawn, right=True).clamp(max=scores.shape[-1] - 1)
        if self.caps is not None:
            token = token.masked_fill((self.caps <= step)[:, None], self.stop_id)
        self.chosen = token[:, 0].tolist()
        self._logprobs.append(torch.log_softmax(scores.float(), dim=-1).gather(-1, token)[:, 0])
        return torch.full_like(scores, float("-inf")).scatter_(1, token, 0.0)

    def logprobs(self) -> Any:
        """(batch, steps) log-probs of the chosen tokens (None before any step)."""
        import torch

        return torch.stack(self._logprobs, dim=1).cpu() if self._logprobs else None
