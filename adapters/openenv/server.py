"""``dialogym env-serve``: registered games served by OpenEnv's own server.

:func:`create_app` hands :class:`~.environment.DialogueEnvironment` to openenv-core's
``create_fastapi_app`` (its ``HTTPEnvServer``: ``/ws`` sessions, ``/reset``, ``/step``,
``/state``, ``/schema``, ``/metadata``, ``/health``) and adds only what turns a refusal into a
status and one line: a :class:`~.environment.RequestError` keeps its status (404 an unknown
game or episode, 409 a step after the end, 422 a bad option), OpenEnv's own validation errors
(a malformed or oversize action) become a 422 naming the field, a body over ``max_body_bytes``
a 413, and anything else a 500 with the error's one line. The server stays up through all of
them; over a WebSocket OpenEnv sends the same message as an error and keeps the session.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from typing import Any

from dialogym.agents.base import Agent
from dialogym.agents.server import BodyCap

from .environment import DialogueEnvironment, GameHost, RequestError
from .models import DialogueAction, DialogueObservation


def create_app(
    games: list[str],
    *,
    seat: str | None = None,
    opponents: Agent | str | Mapping[str, Agent | str] = "scripted",
    max_sessions: int = 256,
    max_episodes: int = 4096,
    max_batch: int = 64,
    max_body_bytes: int = 256 * 1024,
) -> Any:
    """The FastAPI app serving ``games`` (the first is the default of ``reset``): the client
    plays ``seat`` (default: each game's first seat), ``opponents`` (an agent or a model spec,
    or a dict seat -> either) the others. ``max_sessions`` bounds concurrent WebSocket
    sessions, ``max_episodes`` the episodes kept for HTTP clients, ``max_batch`` the requests
    of one batched call of an opponent model."""
    from openenv.core.env_server.http_server import create_fastapi_app

    host = GameHost(games, seat=seat, opponents=opponents, max_episodes=max_episodes, max_batch=max_batch)
    app = create_fastapi_app(functools.partial(DialogueEnvironment, host), DialogueAction, DialogueObservation,
                             max_concurrent_envs=max_sessions)
    app.state.host = host
    app.add_middleware(BodyCap, limit=max_body_bytes)
    app.add_middleware(ClientLeft)
    _add_error_handlers(app)
    return app


class ClientLeft:
    """ASGI middleware: a WebSocket client that closed first is no error. OpenEnv's session
    handler closes the socket after the client's own close, and Starlette raises
    ``WebSocketDisconnect`` when the client is already gone; without this, every session's end
    would log a traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        from starlette.websockets import WebSocketDisconnect

        with contextlib.suppress(WebSocketDisconnect):
            await self.app(scope, receive, send)


def _add_error_handlers(app: Any) -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def refuse(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message.encode("utf-8", "backslashreplace").decode("utf-8")}, status_code=status)

    @app.exception_handler(RequestError)
    async def refused(_request: Any, exc: RequestError) -> JSONResponse:
        return refuse(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Any, exc: RequestValidationError) -> JSONResponse:
        return refuse(422, f"invalid request: {validation_message(exc.errors())}")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Any, exc: HTTPException) -> JSONResponse:
        detail = exc.detail
        if isinstance(detail, list):  # OpenEnv's 422 for an action its model refuses: pydantic's errors
            detail = f"invalid action: {validation_message(detail)}"
        return refuse(exc.status_code, str(detail))

    @app.exception_handler(Exception)
    async def crashed(_request: Any, exc: Exception) -> JSONResponse:
        return refuse(500, f"internal error: {type(exc).__name__}: {exc}")


def validation_message(errors: list[Any]) -> str:
    """pydantic's errors in one line, without the input they quote (an oversize reply would
    come back whole): ``text: String should have at most 8192 characters``."""
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid"


def serve(games: list[str], *, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``games`` on ``host:port`` until interrupted (options as :func:`create_app`)."""
    import uvicorn

    uvicorn.run(create_app(games, **options), host=host, port=port, log_level="info")
