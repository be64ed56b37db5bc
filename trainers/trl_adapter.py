"""Use dialogym games inside TRL's GRPOTrainer, through its ``rollout_func`` hook.

    rollout = DialogymRollout("dialogym/Reference-v0", seat="listener", opponent="scripted")
    trainer = trl.GRPOTrainer(model=model, processing_class=tokenizer, args=config,
                              train_dataset=rollout.dataset(256), reward_funcs=DialogymRollout.reward,
                              rollout_func=rollout)

Each dataset row is the first game-master message of the trained seat on one instance.
For every prompt TRL hands over, the whole episode is played by the rollout engine — the
trained seat by TRL's current model, the other seats by ``opponent`` — and returned as
``prompt_ids`` (the seat's first prompt), ``completion_ids`` (everything after it: the
seat's replies *and* later game-master turns), ``env_mask`` (1 on the seat's own tokens
only, so TRL trains on nothing else), ``logprobs`` and the seat's episode reward. Each
generation is a new *play* of the prompt's instance: the same instance seed, new reply
seeds (play 0 made the dataset's prompt). Every match is built by
:func:`dialogym.envs.new_match`, so the game's registered options (``max_retries``...) hold.

An opponent can end a match before the trained seat speaks (a forfeit after invalid moves,
a game that ends early). :meth:`dataset` skips such instances; when it happens while TRL's
generations are played, that generation comes back as its prompt, a one-token completion
masked out by ``env_mask`` (nothing to train on), and the seat's episode reward, so TRL
still gets one completion per prompt. Both warn.

Guided moves are refused (``guided=True``): TRL's GRPOTrainer recomputes the completion's
log-probs itself, from the raw logits, and has no hook to apply the grammar masks the
replies were sampled under, so its importance ratios would be wrong. Train guided play with
dialogym's own trainers (``GRPOConfig(guided=True)``), which score it under the same masks.
"""

from __future__ import annotations

import warnings
from typing import Any

from dialogym.agents.base import Sampling
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent
from dialogym.envs import new_match, spec

from .samples import seat_samples

TRAINED = "trl-policy"


class DialogymRollout:
    def __init__(self, game: str, *, seat: str | None = None, opponent: str = "scripted", level: str | None = None,
                 split: str = "train", temperature: float = 1.0, max_new_tokens: int = 64, guided: bool = False) -> None:
        if guided:
            raise ValueError("DialogymRollout: guided moves are not supported with TRL's GRPOTrainer, which recomputes "
                             "log-probs without the grammar masks; use dialogym's GRPOTrainer/PPOTrainer with guided=True")
        self.game_spec = spec(game)
        self.game = self.game_spec.game()
        self.seat = seat or self.game.roles[0]
        self.opponent = load_agent(opponent)
        self.level, self.split = level, split
        self.sampling = Sampling(temperature=temperature, max_new_tokens=max_new_tokens)
        #: first prompt -> the instance seed it was made from
        self._seeds: dict[str, int] = {}
        #: instance seed -> plays so far (play 0 made the dataset's prompt)
        self._plays: dict[int, int] = {}

    def first_prompts(self, seeds: list[int]) -> list[list[dict[str, str]] | None]:
        """The trained seat's view at its first turn on each instance seed (earlier seats
        played by the opponent, all instances in one rollout); None where the match ended
        before the seat was asked to speak."""
        matches = [new_match(self.game_spec.id, seed, level=self.level, split=self.split) for seed in seeds]
        opponent_seats = {role: "opponent" for role in self.game.roles if role != self.seat}
        RolloutEngine({"opponent": self.opponent}, sampling=self.sampling).advance([(m, opponent_seats) for m in matches])
        return [None if match.done else match.messages(self.seat) for match in matches]

    def first_prompt(self, seed: int) -> list[dict[str, str]] | None:
        """The trained seat's view at its first turn (see :meth:`first_prompts`)."""
        return self.first_prompts([seed])[0]

    def dataset(self, n: int, seed: int = 0) -> Any:
        """``n`` rows of first prompts, from instance seeds ``seed, seed + 1, ...``; instances
        whose match ends before the trained seat speaks are skipped (with a warning)."""
        from datasets import Dataset

        rows: list[dict[str, Any]] = []
        skipped: list[int] = []
        candidate = seed
        while len(rows) < n:
            if len(skipped) > 10 * n:
                raise ValueError(f"{self.game_spec.id}: the opponent ended {len(skipped)} matches before {self.seat!r} "
                                 f"spoke and only {len(rows)} of {n} instances reached it; check the opponent or the seat")
            # as many candidates as rows are missing, played together; kept in seed order
            seeds = list(range(candidate, candidate + n - len(rows)))
            candidate += len(seeds)
            for instance_seed, prompt in zip(seeds, self.first_prompts(seeds), strict=True):
                if prompt is None:
                    skipped.append(instance_seed)
                else:
                    self._seeds[prompt[-1]["content"]] = instance_seed
                    rows.append({"prompt": prompt})
        if skipped:
            warnings.warn(f"DialogymRollout.dataset: skipped {len(skipped)} instance(s) (seeds {skipped[:5]}"
                          f"{'...' if len(skipped) > 5 else ''}) whose match ended before {self.seat!r} spoke", stacklevel=2)
        return Dataset.from_list(rows)

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list]:
        was_training = trainer.model.training  # TransformersAgent puts the model in eval mode
        agent = TransformersAgent(trainer.model, trainer.processing_class, name=TRAINED, device=str(trainer.model.device))
        specs = []
        for prompt in prompts:
            text = prompt[-1]["content"] if isinstance(prompt, list) else str(prompt)
            if text not in self._seeds:
                raise KeyError("a prompt that DialogymRollout.dataset() did not make; build the dataset with it")
            seed = self._seeds[text]
            # the same instance, new replies: each of TRL's generations is a new play of it
            self._plays[seed] = self._plays.get(seed, 0) + 1
            seats = {r: TRAINED if r == self.seat else "opponent" for r in self.game.roles}
            specs.append(EpisodeSpec(self.game_spec.id, seed=seed, play=self._plays[seed], seats=seats,
                                     level=self.level, split=self.split))
        episodes = RolloutEngine({TRAINED: agent, "opponent": self.opponent}, sampling=self.sampling).run(specs)
        trainer.model.train(was_training)
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_mask": [], "dialogym_reward": []}
        ended_early = 0
        for prompt, episode in zip(prompts, episodes, strict=True):
            samples = seat_samples(episode, self.seat)
            first_turn = next((t for t in episode.turns if t.seat == self.seat), None)
            if first_turn is None:  # the opponent ended the match before the seat spoke
                ended_early += 1
                out["prompt_ids"].append(agent.encode(prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]))
                out["completion_ids"].append([agent.tokenizer.eos_token_id])
                out["env_mask"].append([0])
                out["logprobs"].append([0.0])
                out["dialogym_reward"].append(float(episode.rewards.get(self.seat, 0.0)))
                continue
            prompt_ids = list(first_turn.prompt_token_ids or [])
            if samples and samples[0].input_ids[: len(prompt_ids)] == prompt_ids:
                sample = samples[0]
                rest = slice(len(prompt_ids), None)
                completion, mask, logprobs = sample.input_ids[rest], sample.loss_mask[rest], sample.old_logprobs[rest]
            else:  # the template broke the prefix: train on the first reply alone
                completion = list(first_turn.token_ids or [])
                mask, logprobs = [1] * len(completion), list(first_turn.logprobs or [0.0] * len(completion))
            out["prompt_ids"].append(prompt_ids)
            out["completion_ids"].append(completion)
            out["env_mask"].append(mask)
            out["logprobs"].append(logprobs)
            out["dialogym_reward"].append(float(episode.rewards[self.seat]))
        if ended_early:
            warnings.warn(f"DialogymRollout: {ended_early} of {len(episodes)} episodes ended before {self.seat!r} spoke; "
                          "they come back with a masked-out completion (nothing to train on) and the seat's reward",
                          stacklevel=2)
        return out

    @staticmethod
    def reward(completions: list[Any], dialogym_reward: list[float], **_: Any) -> list[float]:
        """TRL reward function: the trained seat's episode reward, as the rollout recorded it."""
        return [float(r) for r in dialogym_reward]
