"""Every registered game as an OpenEnv environment server (extra ``dialogym[openenv]``).

``dialogym env-serve <game>`` (:func:`.server.serve`) serves games with openenv-core's own
server; :class:`.client.DialogueEnvClient` is the typed client; the models are in
:mod:`.models`; :mod:`.environment` is the ``Environment`` the server steps; :mod:`.trl_example`
trains against a server with TRL's GRPOTrainer. See docs/reach.md.
"""

from __future__ import annotations

try:
    import openenv  # noqa: F401
except ImportError as err:  # pragma: no cover - the message is the point
    raise ImportError("dialogym's OpenEnv server needs openenv-core: pip install 'dialogym[openenv]'") from err

from .client import DialogueEnvClient
from .environment import DialogueEnvironment, GameHost, RequestError
from .models import DialogueAction, DialogueObservation, DialogueState
from .server import create_app, serve

__all__ = [
    "DialogueAction", "DialogueEnvClient", "DialogueEnvironment", "DialogueObservation", "DialogueState", "GameHost",
    "RequestError", "create_app", "serve",
]
