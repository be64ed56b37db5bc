"""The batch-first agent interface: a batch of requests in, a batch of replies out."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from dialogym.envs.core import Message


@dataclass(frozen=True)
class Sampling:
    """Generation settings of one request."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()
    #: Constrain the reply to the request's ``grammar`` (the seat's legal moves) where the
    #: backend can; requests without a grammar, and backends that cannot, play unconstrained.
    guided: bool = False
    #: A guided reply's cap is the smaller of ``max_new_tokens`` and its game's
    #: ``max_reply_tokens``, as a free reply's is, unless this is set: then it gets the game's
    #: whole cap (benchmarks, where ``max_new_tokens`` caps free replies and a guided move
    #: must never be cut; trainers leave it unset, so their cap is the one applied).
    guided_game_cap: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def with_(self, **changes: Any) -> Sampling:
        return replace(self, **changes)


@dataclass
class Request:
    """What one seat of one game needs answered now."""

    messages: list[Message]
    sampling: Sampling = field(default_factory=Sampling)
    #: Seed of this reply; backends that can sample deterministically use it.
    seed: int | None = None
    game: str = ""
    seat: str = ""
    #: Structured form of what the seat may know (scripted players read this).
    view: dict[str, Any] = field(default_factory=dict)
    #: The seat's move grammar (llguidance's Lark dialect), set on guided requests when the
    #: game has one: every string it accepts parses as a legal move in the current state.
    grammar: str | None = None
    #: Free-form routing data of the caller (episode key, ...). Backends ignore it.
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    """A reply; token ids and log-probs where the backend provides them."""

    text: str
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    prompt_token_ids: list[int] | None = None
    latency_s: float | None = None
    #: True when the reply was decoded under the request's grammar (its log-probs are
    #: under the grammar's mask); backends that ignore grammars leave it False.
    guided: bool = False


@runtime_checkable
class Agent(Protocol):
    """Anything that answers a batch of requests, in order.

    What an agent is, it is from the moment it is built (a model spec, a backend's
    constructor); nothing outside sets these on it:

    - ``name``: who it is, in errors and reports;
    - ``guided``: the rollout engine sends a guided agent's requests with the seat's move
      grammar (``Sampling.guided`` on, ``Request.grammar`` set), which the agent decodes
      under where it can (``Reply.guided`` says whether it did). Agents that ignore
      grammars (scripted players, a human) are not guided.
    """

    name: str
    guided: bool

    def act(self, requests: Sequence[Request]) -> list[Reply]: ...



@runtime_checkable
class RemoteAgent(Agent, Protocol):
    """An agent behind an API, whose requests are answered one by one: ``send`` puts one
    request out at once and returns a future that holds its reply (or error) as soon as the
    server answers, and cancelling the future abandons the request. The rollout engine sends
    such an agent's requests as they arrive, keeps up to its bound out (the agent's
    ``concurrency`` where set, else the engine's ``max_concurrent``) and routes each reply to
    its episode as it comes, so one slow request never holds up another episode. ``act``
    answers a batch in order, for callers that want one.
    """

    #: The most requests out at once (None: as many as the caller sends).
    concurrency: int | None

    def send(self, request: Request) -> Future[Reply]: ...
