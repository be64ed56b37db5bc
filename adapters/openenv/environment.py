"""A registered game as an OpenEnv ``Environment``: the client holds one seat, agents the others.

Each episode is a :class:`~dialogym.agents.gym_env.DialogueGymEnv` (the Gymnasium env that
already plays a game for one seat, its other seats driven by agents through the rollout
engine), so ``reset(seed=...)`` draws the same instance as ``dialogym.make(id).reset(seed=...)``
and ``gymnasium.make(id).reset(seed=...)``, and the opponents' replies carry the same seeds.

Sessions. OpenEnv gives every WebSocket connection (its ``EnvClient``) an environment object
of its own, so concurrent sessions never share a match. Its HTTP ``/reset`` and ``/step``
build a fresh object per request; for them an episode is kept in the server's
:class:`EpisodeStore` under its ``episode_id`` (OpenEnv's own reset field; one is made up
when none is given), which ``/step`` names. The store keeps the ``max_episodes`` most
recently used episodes (a client that vanished mid-episode leaves one behind), and drops the
oldest past that.

Bad input raises a :class:`RequestError`; the server answers it with its HTTP status and a
one-line message, and over a WebSocket OpenEnv sends the message as an error, the session
kept open.
"""

from __future__ import annotations

import difflib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata

from dialogym.agents.base import Agent
from dialogym.agents.gym_env import DialogueGymEnv
from dialogym.agents.specs import load_agent, parse_spec
from dialogym.envs.registry import spec

from .models import DialogueAction, DialogueObservation, DialogueState
from .shared_agent import SharedAgent

#: What ``reset`` takes besides OpenEnv's ``seed`` and ``episode_id``.
RESET_OPTIONS = ("game", "seat", "split", "level")


class RequestError(Exception):
    """A request the server refuses; ``status`` is its HTTP status."""

    status = 400


class UnknownGame(RequestError):
    status = 404


class UnknownEpisode(RequestError):
    status = 404


class EpisodeOver(RequestError):
    status = 409


class BadOption(RequestError):
    status = 422


class Episode:
    """One live episode: the Gymnasium env playing it, and a lock (two HTTP steps at once)."""

    def __init__(self, episode_id: str, env: DialogueGymEnv, seed: int) -> None:
        self.id, self.env, self.seed = episode_id, env, seed
        self.lock = threading.Lock()
        self.steps = 0
        self.last_feedback: dict[str, Any] = {}

    @property
    def match(self) -> Any:
        return self.env.match

    def step(self, text: str) -> DialogueObservation:
        with self.lock:
            if self.match.done:
                raise EpisodeOver(f"{self.match.game_id}: episode {self.id!r} is over; reset to start another")
            _, reward, done, _, info = self.env.step(text)
            self.steps += 1
            return self.observation(info, reward=reward)

    def observation(self, info: Mapping[str, Any], *, reward: float | None = None) -> DialogueObservation:
        match, seat = self.match, self.env.seat
        to_act = seat in match.to_act()
        done = match.done
        return DialogueObservation(
            game=match.game_id, seat=seat, episode_id=self.id, instance_id=match.instance.id, seed=self.seed,
            text=match.prompt(seat),
            messages=list(info["messages"]), grammar=match.move_grammar(seat) if to_act else None,
            view=dict(info.get("view") or {}), error=info.get("error"), retries_left=match.retries_left(seat),
            status=("aborted" if match.aborted else "completed") if done else "running",
            rewards=dict(info.get("rewards") or {}), metrics=dict(info.get("metrics") or {}),
            abort_reason=info.get("abort_reason"), reward=reward, done=done,
        )


class EpisodeStore:
    """Live episodes by id, the ``limit`` most recently used kept."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._episodes: OrderedDict[str, Episode] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, episode: Episode) -> None:
        with self._lock:
            self._episodes[episode.id] = episode
            self._episodes.move_to_end(episode.id)
            while len(self._episodes) > self.limit:
                self._episodes.popitem(last=False)

    def get(self, episode_id: str) -> Episode:
        with self._lock:
            episode = self._episodes.get(episode_id)
            if episode is None:
                raise UnknownEpisode(f"no episode {episode_id!r} on this server (never started, or dropped as one of "
                                     f"the oldest past {self.limit}); reset to start one")
            self._episodes.move_to_end(episode_id)
            return episode

    def __len__(self) -> int:
        return len(self._episodes)


class GameHost:
    """What every session of one server shares: the games served, the default seat, the agents
    playing the other seats (each loaded once, its calls batched across sessions) and the
    episodes kept for HTTP clients."""

    def __init__(
        self,
        games: list[str],
        *,
        seat: str | None = None,
        opponents: Agent | str | Mapping[str, Agent | str] = "scripted",
        max_episodes: int = 4096,
        max_batch: int = 64,
    ) -> None:
        if not games:
            raise ValueError("serve at least one game")
        self.games = [spec(game).id for game in games]
        self.seat = seat
        for game in self.games:
            roles = spec(game).game_cls.roles
            if seat is not None and seat not in roles:
                raise ValueError(f"{game}: unknown seat {seat!r}; seats are {list(roles)}")
        self.opponents = self._load(opponents, max_batch)
        self.episodes = EpisodeStore(max_episodes)

    @staticmethod
    def _load(opponents: Agent | str | Mapping[str, Agent | str], max_batch: int) -> dict[str, SharedAgent] | SharedAgent:
        loaded: dict[str, SharedAgent] = {}

        def one(agent: Agent | str) -> SharedAgent:
            key = agent if isinstance(agent, str) else f"object:{id(agent)}"
            if key not in loaded:
                loaded[key] = SharedAgent(load_agent(parse_spec(agent)) if isinstance(agent, str) else agent,
                                          max_batch=max_batch)
            return loaded[key]

        if isinstance(opponents, Mapping):
            return {seat: one(agent) for seat, agent in opponents.items()}
        return one(opponents)

    def start(self, seed: int | None, episode_id: str | None, options: Mapping[str, Any]) -> Episode:
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise BadOption(f"unknown reset option(s) {unknown}; reset takes seed, episode_id and {list(RESET_OPTIONS)}")
        game = self._game(options.get("game"))
        seat = options.get("seat") or self.seat or spec(game).game_cls.roles[0]
        roles = spec(game).game_cls.roles
        if seat not in roles:
            raise BadOption(f"{game}: unknown seat {seat!r}; seats are {list(roles)}")
        opponents = self.opponents
        if isinstance(opponents, dict):
            opponents = {role: opponents[role] for role in roles if role != seat and role in opponents}
        settings = {key: options[key] for key in ("split", "level") if options.get(key) is not None}
        try:
            env = DialogueGymEnv(game, seat=seat, opponents=opponents, **settings)
            if seed is None:
                seed = int(uuid.uuid4().int % 2**31)
            _, info = env.reset(seed=seed)
        except (ValueError, TypeError) as err:  # an unknown level or split, no instance in a split
            raise BadOption(str(err)) from None
        episode = Episode(episode_id or uuid.uuid4().hex, env, seed)
        episode.last_feedback = info
        self.episodes.add(episode)
        return episode

    def _game(self, game: str | None) -> str:
        if game is None:
            return self.games[0]
        try:
            game_id = spec(str(game)).id
        except KeyError:
            game_id = str(game)
        if game_id not in self.games:
            close = difflib.get_close_matches(game_id, self.games, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownGame(f"this server serves no game {game_id!r}{hint} (it serves {', '.join(self.games)})")
        return game_id


class DialogueEnvironment(Environment[DialogueAction, DialogueObservation, DialogueState]):
    """One OpenEnv session (a WebSocket connection) or one HTTP request of a :class:`GameHost`."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, host: GameHost) -> None:
        super().__init__()
        self.host = host
        self.episode: Episode | None = None

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> DialogueObservation:
        self.episode = self.host.start(seed, episode_id, options)
        return self.episode.observation(self.episode.last_feedback)

    def step(self, action: DialogueAction, timeout_s: float | None = None, episode_id: str | None = None,
             **kwargs: Any) -> DialogueObservation:
        unknown = sorted(set(kwargs) - {"request_id"})
        if unknown:
            raise BadOption(f"unknown step field(s) {unknown}; a step takes action, episode_id, timeout_s and request_id")
        episode = self.host.episodes.get(episode_id) if episode_id else self.episode
        if episode is None:
            raise UnknownEpisode("no episode in this session: reset first (over HTTP, pass the episode_id reset returned)")
        return episode.step(action.text)

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(
            name="dialogym", version=None,
            description=f"dialogym games ({', '.join(self.host.games)}): the client plays one seat, agents the others; "
                        "reset takes seed, episode_id, game, seat, split and level (docs/reach.md)",
        )

    @property
    def state(self) -> DialogueState:
        episode = self.episode
        if episode is None:
            return DialogueState()
        match = episode.match
        return DialogueState(episode_id=episode.id, step_count=episode.steps, game=match.game_id, seat=episode.env.seat,
                             instance_id=match.instance.id, seed=episode.seed, done=match.done)
