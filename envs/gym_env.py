"""Gymnasium single-agent adapter: one seat is yours, agents fill the others.

``gymnasium.make("dialogym/Reference-v0", seat="listener", opponents="scripted")``.
``opponents`` is one agent for every other seat, or a dict seat -> agent; an agent is any
object with ``act(requests) -> replies`` or a model-spec string (default ``"scripted"``).
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym

from dialogym.agents.base import Agent
from dialogym.agents.rollout import request_for

from .match import Feedback
from .spaces import MatchFactory, action_space, observation_space, outcome_info, render, to_observation


def _as_agent(agent: Agent | str) -> Agent:
    if isinstance(agent, str):
        from dialogym.agents.specs import load_agent

        return load_agent(agent)
    if not hasattr(agent, "act"):
        raise TypeError(f"an opponent must have act(requests) -> replies, got {agent!r}")
    return agent


class DialogueGymEnv(gym.Env):
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
        if isinstance(opponents, dict):
            missing = set(others) - set(opponents)
            if missing:
                raise ValueError(f"{game_id}: no opponent given for seats {sorted(missing)}")
            self.opponents = {r: _as_agent(opponents[r]) for r in others}
        else:
            agent = _as_agent(opponents)
            self.opponents = {r: agent for r in others}
        self.render_mode = self.factory.render_mode
        self.observation_space = observation_space()
        self.action_space = action_space()
        self.match = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        episode_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31 - 1))
        self.match = self.factory.new(episode_seed, options)
        self._play_opponents()
        return self._observation(), self._info()

    def step(self, action: str):
        if self.match is None:
            raise RuntimeError("call reset() before step()")
        if self.match.done:
            raise RuntimeError("the episode is over; call reset()")
        feedback = self.match.submit(self.seat, action if isinstance(action, str) else str(action))
        self._play_opponents()
        done = self.match.done
        reward = float(self.match.outcome.rewards.get(self.seat, 0.0)) if done else 0.0
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, done, False, self._info(feedback)

    def _play_opponents(self) -> None:
        """Let the other seats move until it is this seat's turn or the game ends."""
        match = self.match
        while not match.done:
            others = [s for s in match.to_act() if s != self.seat]
            if not others:
                return
            for other in others:
                reply = self.opponents[other].act([request_for(match, other)])[0]
                match.submit(other, reply.text, token_ids=reply.token_ids, logprobs=reply.logprobs)
                if match.done:
                    return

    def _observation(self) -> dict[str, str]:
        match = self.match
        text = match.messages(self.seat)[-1]["content"] if self.seat in match.to_act() else ""
        return to_observation(text)

    def _info(self, feedback: Feedback | None = None) -> dict[str, Any]:
        match = self.match
        # deepcopy: a game's view may hold its own (cached) objects; infos must be fresh.
        view = copy.deepcopy(match.view(self.seat))
        return {"messages": match.messages(self.seat), "view": view, **outcome_info(match, feedback)}

    def render(self) -> str | None:
        return render(self.match, self.render_mode)
