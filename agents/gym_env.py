"""Gymnasium single-agent env: one seat is yours, agents fill the others.

``gymnasium.make("dialogym/Reference-v0", seat="listener", opponents="scripted")``.
``opponents`` is one agent for every other seat, or a dict seat -> agent; an agent is any
object with ``act(requests) -> replies`` or a model-spec string (default ``"scripted"``).

Every game registers this class with Gymnasium by its import path, so ``dialogym.envs``
never imports agents. The opponents are played by a :class:`~.rollout.RolloutEngine`
(``advance``), so their requests, seeds and batching are those of any other rollout.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym

from dialogym.envs.match import Feedback, Match
from dialogym.envs.spaces import (
    MatchFactory,
    action_space,
    observation_space,
    outcome_info,
    render,
    to_observation,
)

from .base import Agent, Sampling
from .rollout import RolloutEngine


def _as_agent(agent: Agent | str, loaded: dict[str, Agent]) -> Agent:
    if isinstance(agent, str):
        if agent not in loaded:  # a spec named for several seats is loaded once
            from .specs import load_agent

            loaded[agent] = load_agent(agent)
        return loaded[agent]
    if not hasattr(agent, "act"):
        raise TypeError(f"an opponent must have act(requests) -> replies, got {agent!r}")
    return agent


class DialogueGymEnv(gym.Env):
    """A registered game as a Gymnasium env for one ``seat``; ``opponents`` play the rest."""

    metadata = {"render_modes": ["human", "ansi"]}

    def __init__(
        self,
        game_id: str,
        seat: str | None = None,
        opponents: Agent | str | dict[str, Agent | str] | None = None,
        **kw: Any,
    ) -> None:
        self.factory = MatchFactory(game_id, **kw)
        roles = self.factory.game.roles
        self.seat = seat or roles[0]
        if self.seat not in roles:
            raise ValueError(f"{game_id}: unknown seat {self.seat!r}; seats are {list(roles)}")
        others = [r for r in roles if r != self.seat]
        opponents = "scripted" if opponents is None else opponents
        loaded: dict[str, Agent] = {}
        if isinstance(opponents, dict):
            missing = set(others) - set(opponents)
            if missing:
                raise ValueError(f"{game_id}: no opponent given for seats {sorted(missing)}")
            self.opponents = {r: _as_agent(opponents[r], loaded) for r in others}
        else:
            agent = _as_agent(opponents, loaded)
            self.opponents = {r: agent for r in others}
        # One engine name per distinct agent (named after its first seat), so an agent that
        # fills several seats answers them in one batch.
        names: dict[int, str] = {}
        for other, agent in self.opponents.items():
            names.setdefault(id(agent), other)
        # opponents play as in a benchmark: a guided opponent's move gets its game's whole cap
        self.engine = RolloutEngine({names[id(agent)]: agent for agent in self.opponents.values()},
                                    sampling=Sampling(guided_game_cap=True))
        self._seating = {other: names[id(agent)] for other, agent in self.opponents.items()}
        self.render_mode = self.factory.render_mode
        self.observation_space = observation_space()
        self.action_space = action_space()
        self.match: Match | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        episode_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31 - 1))
        self.match = self.factory.new(episode_seed, options)
        self.engine.advance([(self.match, self._seating)])
        return self._observation(), self._info()

    def step(self, action: str):
        if self.match is None:
            raise RuntimeError("call reset() before step()")
        if self.match.done:
            raise RuntimeError("the episode is over; call reset()")
        feedback = self.match.submit(self.seat, action if isinstance(action, str) else str(action))
        self.engine.advance([(self.match, self._seating)])
        done = self.match.done
        reward = float(self.match.outcome.rewards.get(self.seat, 0.0)) if done else 0.0
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, done, False, self._info(feedback)

    def _observation(self) -> dict[str, str]:
        match = self.match
        text = match.prompt(self.seat)
        return to_observation(text)

    def _info(self, feedback: Feedback | None = None) -> dict[str, Any]:
        match = self.match
        # deepcopy: a game's view may hold its own (cached) objects; infos must be fresh.
        view = copy.deepcopy(match.view(self.seat))
        return {"messages": match.messages(self.seat), "view": view, **outcome_info(match, feedback)}

    def render(self) -> str | None:
        return render(self.match, self.render_mode)
