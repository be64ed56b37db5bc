"""The log-probabilities of a sequence's own tokens under a model: the one forward pass
every policy-gradient loss needs (:func:`token_logprobs`).

Two things make it cheaper than a plain pass and leave its value as it is:

- the vocabulary projection, the costliest part of a small model's forward pass, runs on
  the seat's own tokens alone (``loss_mask``), not on the context;
- rows that share their context up to their first own token (the plays of one GRPO group)
  have that prefix encoded once (:func:`_own_hidden`).

Guided turns' grammar masks (:func:`samples.collate`'s ``allowed``) set the logits of the
tokens they forbid to -inf, so a guided token is scored under the distribution it was
sampled from (:func:`_own_masks`).
"""

from __future__ import annotations

from typing import Any


def token_logprobs(model: Any, batch: dict, *, temperature: float = 1.0, return_hidden: bool = False,
                   share_prefixes: bool = True) -> Any:
    """log pi(token_t | tokens_<t) for t >= 1, shape (batch, length - 1), computed only where
    ``loss_mask`` is 1 (0 elsewhere): the vocabulary projection, the costliest part of a
    small model's forward pass, runs on the seat's own tokens alone, not on the context.
    Where the batch has grammar masks (``allowed``, from guided turns: see
    :func:`samples.collate`), the logits of the tokens they forbid are -inf before the
    softmax, so a guided token's log-prob is the one under the masked, renormalised
    distribution it was sampled from (a token with one legal choice: 0, and no gradient).
    ``return_hidden=True`` also returns the last hidden states (for a value head).

    ``temperature`` is the one the tokens were sampled at: the logits are divided by it, so
    the log-probs are under the distribution the behaviour policy drew from (the backend
    records them the same way) and a ratio of new to old is 1 before any update, whatever
    the temperature. 0 (greedy replies) scores under the raw distribution.

    Rows that share their context up to their first own token (the plays of one GRPO group:
    the same prompt, different replies) have that prefix encoded once (:func:`_own_hidden`),
    its keys and values shared by every row and the gradient through it summed, as a
    forward pass per row would; ``share_prefixes=False`` encodes every row whole."""
    import torch

    lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA layers live inside
    own = batch["loss_mask"][:, 1:] > 0
    hidden = None
    if return_hidden or not share_prefixes or (own_hidden := _own_hidden(lm.get_decoder(), batch, own)) is None:
        hidden = lm.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        own_hidden = hidden[:, :-1][own]
    logits = lm.get_output_embeddings()(own_hidden).float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    if "allowed" in batch:
        logits = logits.masked_fill(~_own_masks(batch["allowed"], own, logits.shape[-1]), float("-inf"))
    targets = batch["input_ids"][:, 1:][own]
    out = torch.zeros(own.shape, dtype=torch.float32, device=logits.device)
    out[own] = torch.log_softmax(logits, -1).gather(-1, targets[:, None])[:, 0]
    return (out, hidden) if return_hidden else out


def _own_hidden(decoder: Any, batch: dict, own: Any) -> Any:
    """The last hidden states at the own positions (``own``'s ones, row-major), with each
    distinct prefix encoded once; None when no two rows share one (a plain pass is as cheap).

    A row's prefix is its tokens before the position whose hidden state predicts its first
    own token. The distinct prefixes run as one right-padded batch that keeps its cache;
    the cache's rows are gathered to the batch's (a row per sample, the gradient of a shared
    one summed by autograd), and the suffixes run on it with their own position ids, padding
    holes masked out. Every suffix token sees exactly the tokens it sees in a whole pass."""
    import torch
    from transformers import DynamicCache

    rows = batch["input_ids"].shape[0]
    if rows < 2 or not bool(own.any()):
        return None
    lengths = batch["attention_mask"].sum(1).tolist()
    starts = [int(torch.nonzero(own[r])[0]) if bool(own[r].any()) else lengths[r] - 1 for r in range(rows)]
    ids = batch["input_ids"].tolist()
    prefix_of: dict[tuple[int, ...], int] = {}
    group = [prefix_of.setdefault(tuple(ids[r][: starts[r]]), len(prefix_of)) for r in range(rows)]
    if len(prefix_of) == rows or max(starts) == 0:
        return None
    device = batch["input_ids"].device
    prefixes = list(prefix_of)
    width = max(len(p) for p in prefixes)
    pad = 0  # any id: padded positions are masked out
    prefix_ids = torch.tensor([list(p) + [pad] * (width - len(p)) for p in prefixes], device=device)
    prefix_mask = torch.tensor([[1] * len(p) + [0] * (width - len(p)) for p in prefixes], device=device)
    cache = DynamicCache()
    decoder(input_ids=prefix_ids, attention_mask=prefix_mask, past_key_values=cache, use_cache=True)
    cache.batch_select_indices(torch.tensor(group, device=device))
    suffix_len = [lengths[r] - starts[r] for r in range(rows)]
    span = max(suffix_len)
    suffix_ids = torch.tensor([ids[r][starts[r]: lengths[r]] + [pad] * (span - suffix_len[r]) for r in range(rows)], device=device)
    suffix_mask = torch.tensor([[1] * n + [0] * (span - n) for n in suffix_len], device=device)
    positions = torch.tensor([list(range(starts[r], starts[r] + span)) for r in range(rows)], device=device)
    hidden = decoder(input_ids=suffix_ids, attention_mask=torch.cat([prefix_mask[group], suffix_mask], 1),
                     position_ids=positions, past_key_values=cache, use_cache=True).last_hidden_state
    where = torch.nonzero(own)  # (row, position) pairs, row-major like own's boolean indexing
    offsets = where[:, 1] - torch.tensor(starts, device=device)[where[:, 0]]
    return hidden[where[:, 0], offsets]


def _own_masks(allowed: Any, own: Any, vocab_size: int) -> Any:
    """(own tokens, vocab_size) bool masks, in the row-major order of ``own``'s ones, from
    the packed per-sample rows of :func:`samples.collate` (row k: a sample's k-th own token)."""
    import torch

    counts = own.sum(1)
    packed = allowed[torch.arange(allowed.shape[1], device=allowed.device)[None, :] < counts[:, None].to(allowed.device)]
    if packed.shape[-1] * 8 < vocab_size:
        raise ValueError(f"grammar masks cover {packed.shape[-1] * 8} tokens but the model has {vocab_size}: "
                         "replay them with the learner's own tokenizer and vocabulary size")
    bits = (packed[..., None] >> torch.arange(8, dtype=torch.uint8, device=packed.device)) & 1
    return bits.reshape(packed.shape[0], -1)[:, :vocab_size].bool().to(own.device)


__all__ = ["token_logprobs"]
