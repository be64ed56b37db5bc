"""The typed OpenEnv client of a dialogym game server (``dialogym env-serve``).

It is openenv-core's own ``EnvClient`` (a WebSocket session: the server keeps one match per
connection), typed with this package's models::

    async with DialogueEnvClient(base_url="http://127.0.0.1:8000") as env:
        result = await env.reset(seed=7, split="test")
        while not result.done:
            result = await env.step(DialogueAction(text=my_policy(result.observation.messages)))
        print(result.observation.rewards, result.observation.metrics)

``DialogueEnvClient(...).sync()`` gives the same calls without ``await`` (OpenEnv's
``SyncEnvClient``). A refused request raises OpenEnv's ``RuntimeError("Server error: ...")``
with the server's one-line message; the session stays open.
"""

from __future__ import annotations

from typing import Any

from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient

from .models import DialogueAction, DialogueObservation, DialogueState


class DialogueEnvClient(EnvClient[DialogueAction, DialogueObservation, DialogueState]):
    """One session of a dialogym game server."""

    def _step_payload(self, action: DialogueAction | str) -> dict[str, Any]:
        if isinstance(action, str):
            action = DialogueAction(text=action)
        return action.model_dump(exclude={"metadata"})

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[DialogueObservation]:
        observation = DialogueObservation(**payload.get("observation", {}), reward=payload.get("reward"),
                                          done=bool(payload.get("done", False)))
        return StepResult(observation=observation, reward=payload.get("reward"), done=observation.done)

    def _parse_state(self, payload: dict[str, Any]) -> DialogueState:
        return DialogueState(**payload)
