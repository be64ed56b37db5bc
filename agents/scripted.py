"""Scripted players: the hand-written baseline policies each game registers."""

from __future__ import annotations

from collections.abc import Sequence

from dialogym.envs.instances import episode_rng
from dialogym.envs.registry import spec

from .base import Reply, Request


class ScriptedAgent:
    """Plays every registered game with the game's scripted policies.

    ``variant`` picks a named set of policies (``"scripted:fair"``); by default each game's
    first registered set is used. Each reply draws from a generator seeded by the request,
    so scripted play is reproducible.
    """

    #: The policies write their moves themselves: requests never carry a grammar for them
    #: (a ``scripted+guided`` spec builds the same player).
    guided = False

    def __init__(self, variant: str | None = None, name: str | None = None) -> None:
        self.variant = variant
        self.name = name or ("scripted" if variant is None else f"scripted:{variant}")

    def act(self, requests: Sequence[Request]) -> list[Reply]:
        return [Reply(text=self._reply(request)) for request in requests]

    def _reply(self, request: Request) -> str:
        players = spec(request.game).players
        if not players:
            raise ValueError(f"{request.game} registers no scripted players")
        variant = self.variant if self.variant is not None else next(iter(players))
        if variant not in players:
            raise ValueError(f"{request.game} has no scripted player {variant!r}; choose one of {sorted(players)}")
        policy = players[variant].get(request.seat)
        if policy is None:
            raise ValueError(f"{request.game}: scripted player {variant!r} cannot play seat {request.seat!r}")
        return policy(request.view, episode_rng(request.seed or 0))
