"""The typed action, observation and state of a dialogym game served over OpenEnv.

The action is the reply text. The observation carries what the client's seat needs to reply
and to learn: the game master's message it must answer, its whole chat so far (ready for a
chat template), the move grammar of this state (so a client can decode guided), the reward,
``done``, and at the end the episode's rewards and metrics. Both are OpenEnv's own
``Action``/``Observation`` (pydantic, ``extra="forbid"``), so OpenEnv's server refuses a
malformed or oversize action with a 422 before any game sees it.
"""

from __future__ import annotations

from typing import Any

from openenv.core.env_server.types import Action, Observation, State
from pydantic import Field

from dialogym.envs.core import MAX_ACTION_CHARS


class DialogueAction(Action):
    """One reply of the client's seat (at most ``MAX_ACTION_CHARS`` characters)."""

    text: str = Field(..., max_length=MAX_ACTION_CHARS, description="the seat's reply, as a model wrote it")


class DialogueObservation(Observation):
    """What the client's seat sees after ``reset`` and after each ``step``."""

    game: str = Field("", description="the registered game id")
    seat: str = Field("", description="the seat the client plays")
    episode_id: str = Field("", description="pass it to HTTP /step as episode_id (a WebSocket session needs none)")
    instance_id: str = Field("", description="the instance's content id: equal ids, equal instances")
    seed: int = Field(0, description="the instance seed")
    text: str = Field("", description="the game master's message the seat must answer now ('' when not to act)")
    messages: list[dict[str, str]] = Field(default_factory=list, description="the seat's whole chat so far")
    grammar: str | None = Field(None, description="the move grammar of this state (llguidance Lark), or None")
    view: dict[str, Any] = Field(default_factory=dict, description="what the seat may know, structured (scripted players)")
    error: str | None = Field(None, description="why the last reply was refused (the seat is asked again)")
    retries_left: int = Field(0, description="re-prompts left this turn before the episode is aborted")
    status: str = Field("running", description="running, completed or aborted")
    rewards: dict[str, float] = Field(default_factory=dict, description="every seat's reward, once done")
    metrics: dict[str, float] = Field(default_factory=dict, description="the episode's metrics, once done")
    abort_reason: str | None = Field(None, description="why the episode was aborted, if it was")


class DialogueState(State):
    """The session's episode, as ``state()`` reports it."""

    game: str = ""
    seat: str = ""
    instance_id: str = ""
    seed: int = 0
    done: bool = False
