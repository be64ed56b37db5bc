"""A small OpenAI-compatible server that serves any dialogym agent (``dialogym serve``).

Concurrent HTTP requests are gathered into batches: a worker thread takes every request
that arrived while the previous batch ran (up to ``max_batch``) and answers them with one
``act`` call, so many clients share the model's batched generation. An agent that fails,
or answers with the wrong number of replies, fails that batch's requests with HTTP 500 and
the error; the worker goes on serving later requests.

One client cannot hold the others up: a body over ``max_body_bytes`` is refused (413) while
it is read, a prompt over ``max_prompt_chars`` (all messages together) is refused (413)
before it reaches the batcher, and bad numbers (NaN, infinities, out of range) and
unsupported features (``stream``, ``n`` > 1) are refused with 422 and 400. Every error body
is OpenAI's ``{"error": {"message": ..., "type": ...}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .base import Agent, Reply, Request, Sampling


class ChatMessage(BaseModel):
    role: str
    content: str


class StructuredOutputs(BaseModel):
    """vLLM's ``structured_outputs`` request field; this server honours ``grammar``."""

    grammar: str | None = None


class ChatRequest(BaseModel):
    """The part of OpenAI's chat-completions request this server understands."""

    model_config = ConfigDict(allow_inf_nan=False)

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(128, ge=1, le=8192)
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: bool = False
    #: A move grammar (llguidance's Lark dialect) the reply must follow, as vLLM takes it.
    structured_outputs: StructuredOutputs | None = None
    #: Read only to refuse them: this server answers one whole choice per request.
    n: int = 1
    stream: bool = False


class _Batcher:
    def __init__(self, agent: Agent, max_batch: int) -> None:
        self.agent, self.max_batch = agent, max_batch
        self.queue: queue.Queue[tuple[Request, asyncio.AbstractEventLoop, asyncio.Future]] = queue.Queue()
        self.thread = threading.Thread(target=self._work, daemon=True, name="dialogym-batcher")
        self.thread.start()

    def submit(self, request: Request) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.queue.put((request, loop, future))
        return future

    def _work(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                replies: list[Any] = list(self.agent.act([item[0] for item in batch]))
                if len(replies) != len(batch):
                    raise RuntimeError(f"agent {self.agent.name!r} returned {len(replies)} replies for {len(batch)} requests")
            except Exception as err:  # every waiting client gets the error; the worker lives on
                replies = [err] * len(batch)
            for (_, loop, future), reply in zip(batch, replies, strict=True):
                with contextlib.suppress(RuntimeError):  # a closed client loop: nobody waits for it
                    loop.call_soon_threadsafe(_resolve, future, reply)


def _resolve(future: asyncio.Future, value: Any) -> None:
    if future.done():
        return
    if isinstance(value, Exception):
        future.set_exception(value)
    else:
        future.set_result(value)


def _error(status: int, message: str, kind: str = "invalid_request_error", **extra: Any):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind}, **extra}, status_code=status)


class _BodyCap:
    """ASGI middleware refusing a request body over ``limit`` bytes (413) as it is read,
    so a huge body is neither buffered nor parsed."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    def message(self) -> str:
        return f"request body over this server's {self.limit} byte cap (max_body_bytes)"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await _error(413, self.message())(scope, receive, send)
        seen = 0

        async def capped() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                from fastapi import HTTPException  # FastAPI passes it on to the app's handler

                raise HTTPException(413, self.message())
            return message

        await self.app(scope, capped, send)


def create_app(
    agent: Agent,
    *,
    model_name: str | None = None,
    max_batch: int = 32,
    max_prompt_chars: int = 32_000,
    max_body_bytes: int = 1024 * 1024,
):
    """A FastAPI app with ``/v1/models`` and ``/v1/chat/completions``.

    ``max_prompt_chars`` caps the characters of a request's messages together (one long
    prompt would hold the batcher, and so every client, for minutes); ``max_body_bytes``
    caps the raw request body.
    """
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    name = model_name or agent.name
    batcher = _Batcher(agent, max_batch)
    app = FastAPI(title="dialogym model server")
    app.add_middleware(_BodyCap, limit=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Any, exc: RequestValidationError) -> Any:
        # The default handler echoes the offending input, and NaN or infinity cannot be
        # written as JSON: keep only where and what, which always serialise.
        problems = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                    for e in exc.errors()]
        where = "; ".join(f"{'.'.join(p['loc'][1:]) or 'body'}: {p['msg']}" for p in problems)
        return _error(422, f"invalid request: {where}", detail=problems)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Any, exc: HTTPException) -> Any:
        response = _error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "dialogym"}]}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> Any:
        if body.model not in (None, name):
            return _error(404, f"model {body.model!r} is not served here; this server serves {name!r}")
        if body.stream:
            return _error(400, "stream: true is not supported; this server sends each reply whole, ask without 'stream'")
        if body.n != 1:
            return _error(400, f"n={body.n} is not supported; this server gives one choice per request, send {body.n} "
                               "requests instead (they are batched together)")
        prompt_chars = sum(len(m.content) for m in body.messages)
        if prompt_chars > max_prompt_chars:
            return _error(413, f"the prompt has {prompt_chars} characters, over this server's cap of {max_prompt_chars} "
                               "(max_prompt_chars); shorten the conversation")
        stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
        grammar = body.structured_outputs.grammar if body.structured_outputs else None
        if grammar is not None:
            from .guidance import GrammarError, check_grammar

            try:
                check_grammar(grammar)
            except GrammarError as err:
                return _error(400, str(err))
        request = Request(
            messages=[m.model_dump() for m in body.messages],
            sampling=Sampling(temperature=body.temperature, top_p=body.top_p, max_new_tokens=body.max_tokens, stop=stop,
                              guided=grammar is not None),
            seed=body.seed,
            grammar=grammar,
        )
        try:
            reply: Reply = await batcher.submit(request)
        except Exception as err:
            return _error(500, f"the served agent {agent.name!r} failed: {err.__class__.__name__}: {err}", "server_error")
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": "stop"}
        if body.logprobs and reply.logprobs is not None:
            choice["logprobs"] = {"content": [{"token": str(t), "logprob": lp} for t, lp in zip(reply.token_ids or [], reply.logprobs, strict=False)]}
        usage = {
            "prompt_tokens": len(reply.prompt_token_ids or []),
            "completion_tokens": len(reply.token_ids or []),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [choice],
            "usage": usage,
        }

    return app


def serve(
    agent: Agent,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 32,
    max_prompt_chars: int = 32_000,
    max_body_bytes: int = 1024 * 1024,
) -> None:
    import uvicorn

    app = create_app(agent, max_batch=max_batch, max_prompt_chars=max_prompt_chars, max_body_bytes=max_body_bytes)
    uvicorn.run(app, host=host, port=port, log_level="info")
