"""PettingZoo adapters: every registered game as an AEC and a Parallel environment
(:func:`make`, :func:`make_parallel`).

Observations are ``{"text": <the game master's message this seat must answer now>}``
(empty when the seat is not to act); ``infos[seat]["messages"]`` holds the seat's whole
chat, ready for a chat template. Actions are reply strings. A reply that is not a valid
move (a random ``Text.sample()``, say) is an ordinary invalid move: the same seat is asked
again with the error, and after the game's re-prompt limit the episode ends aborted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pettingzoo import AECEnv, ParallelEnv

from .match import Feedback, Match
from .spaces import MatchFactory, action_space, observation_space, outcome_info, render, to_observation


class _Seats:
    """What the two PettingZoo adapters share: spaces, seeding, observations, infos."""

    metadata: dict[str, Any] = {"render_modes": ["human", "ansi"], "is_parallelizable": True}

    def _setup(self, game_id: str, kw: dict[str, Any]) -> None:
        self.factory = MatchFactory(game_id, **kw)
        self.render_mode = self.factory.render_mode
        if self.render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {self.render_mode!r}")
        self.metadata = {**self.metadata, "name": game_id.replace("/", "_")}
        self.possible_agents = list(self.factory.game.roles)
        self._observation_spaces = {seat: observation_space() for seat in self.possible_agents}
        self._action_spaces = {seat: action_space() for seat in self.possible_agents}
        #: where reset() without a seed draws the episode's seed: a generator, or the seed of
        #: the last seeded reset, made a generator only when needed (one takes ~8 us to build)
        self._seed_rng: np.random.Generator | int | None = None
        self.match: Match | None = None

    def observation_space(self, agent: str):
        return self._observation_spaces[agent]

    def action_space(self, agent: str):
        return self._action_spaces[agent]

    def _new_match(self, seed: int | None, options: dict[str, Any] | None) -> Match:
        if seed is not None:
            self._seed_rng = episode_seed = int(seed)
        else:
            if not isinstance(self._seed_rng, np.random.Generator):
                self._seed_rng = np.random.default_rng(self._seed_rng)
            episode_seed = int(self._seed_rng.integers(2**31 - 1))
        self.match = self.factory.new(episode_seed, options)
        return self.match

    def _text(self, seat: str) -> str:
        assert self.match is not None
        return self.match.prompt(seat)

    def _infos(self, feedback: Mapping[str, Feedback] | None = None) -> dict[str, dict[str, Any]]:
        """Each seat's info: its whole chat, whether it is to act, its re-prompts left, and
        what :func:`outcome_info` adds (with the seat's ``feedback``, if it has one)."""
        match = self.match
        assert match is not None
        to_act = match.to_act()
        feedback = feedback or {}
        return {
            seat: {
                "messages": match.messages(seat),
                "to_act": seat in to_act,
                "retries_left": match.retries_left(seat),
                **outcome_info(match, feedback.get(seat)),
            }
            for seat in self.agents
        }

    def render(self) -> str | None:
        return render(self.match, self.render_mode)

    def close(self) -> None:
        self.match = None


class DialogueAECEnv(_Seats, AECEnv):
    """A registered game as a PettingZoo AEC environment (``dialogym.make(id)``)."""

    def __init__(self, game_id: str, **kw: Any) -> None:
        super().__init__()
        self._setup(game_id, kw)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        match = self._new_match(seed, options)
        self.agents = list(self.possible_agents)
        self.rewards = {seat: 0.0 for seat in self.agents}
        self._cumulative_rewards = {seat: 0.0 for seat in self.agents}
        self.terminations = {seat: False for seat in self.agents}
        self.truncations = {seat: False for seat in self.agents}
        self.infos = self._infos()
        self.agent_selection = (match.to_act() or self.agents)[0]

    def observe(self, agent: str) -> dict[str, str]:
        return to_observation(self._text(agent))

    def step(self, action: str | None) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        assert self.match is not None, "call reset() before step()"
        self._cumulative_rewards[agent] = 0.0
        feedback = self.match.submit(agent, action if action is not None else "")
        self.rewards = {seat: 0.0 for seat in self.agents}
        if self.match.done:
            self.rewards = {seat: self.match.outcome.rewards.get(seat, 0.0) for seat in self.agents}
            self.terminations = {seat: True for seat in self.agents}
        self.infos = self._infos({agent: feedback})
        self.agent_selection = (self.match.to_act() or self.agents)[0]
        self._accumulate_rewards()
        if self.render_mode == "human":
            self.render()


class DialogueParallelEnv(_Seats, ParallelEnv):
    """A registered game as a PettingZoo Parallel environment (``dialogym.make_parallel(id)``).

    Each ``step`` submits the actions of the seats that are to act; actions of other seats
    are ignored (their observation text is empty while they wait).
    """

    def __init__(self, game_id: str, **kw: Any) -> None:
        self._setup(game_id, kw)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        self._new_match(seed, options)
        self.agents = list(self.possible_agents)
        return self._observations(), self._infos()

    def _observations(self) -> dict[str, dict[str, str]]:
        return {seat: to_observation(self._text(seat)) for seat in self.agents}

    def step(self, actions: dict[str, str]):
        assert self.match is not None, "call reset() before step()"
        feedback: dict[str, Feedback] = {}
        for seat in self.match.to_act():
            if self.match.done:
                break
            if seat in actions:
                feedback[seat] = self.match.submit(seat, actions[seat] if actions[seat] is not None else "")
        done = self.match.done
        rewards = {seat: (self.match.outcome.rewards.get(seat, 0.0) if done else 0.0) for seat in self.agents}
        terminations = {seat: done for seat in self.agents}
        truncations = {seat: False for seat in self.agents}
        observations = self._observations()
        infos = self._infos(feedback)
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos


def make(id: str, **kw: Any) -> DialogueAECEnv:
    """A PettingZoo AEC environment of a registered game."""
    return DialogueAECEnv(id, **kw)


def make_parallel(id: str, **kw: Any) -> DialogueParallelEnv:
    """A PettingZoo Parallel environment of a registered game."""
    return DialogueParallelEnv(id, **kw)
