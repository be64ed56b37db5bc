"""A small OpenAI-compatible server that serves any dialogym agent (``dialogym serve``).

Concurrent HTTP requests are gathered into batches: a worker thread takes every request
that arrived while the previous batch ran (up to ``max_batch``) and answers them with one
``act`` call, so many clients share the model's batched generation. An agent that fails,
or answers with the wrong number of replies, fails that batch's requests with HTTP 500 and
the error; the worker goes on serving later requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
import uuid
from typing import Any

from pydantic import BaseModel, Field

from .base import Agent, Reply, Request, Sampling


class ChatMessage(BaseModel):
    role: str
    content: str


class StructuredOutputs(BaseModel):
    """vLLM's ``structured_outputs`` request field; this server honours ``grammar``."""

    grammar: str | None = None


class ChatRequest(BaseModel):
    """The part of OpenAI's chat-completions request this server understands."""

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


def create_app(agent: Agent, *, model_name: str | None = None, max_batch: int = 32):
    """A FastAPI app with ``/v1/models`` and ``/v1/chat/completions``."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    name = model_name or agent.name
    batcher = _Batcher(agent, max_batch)
    app = FastAPI(title="dialogym model server")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "dialogym"}]}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> Any:
        if body.model not in (None, name):
            message = f"model {body.model!r} is not served here; this server serves {name!r}"
            return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=404)
        stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
        grammar = body.structured_outputs.grammar if body.structured_outputs else None
        if grammar is not None:
            from .guidance import GrammarError, check_grammar

            try:
                check_grammar(grammar)
            except GrammarError as err:
                return JSONResponse({"error": {"message": str(err), "type": "invalid_request_error"}}, status_code=400)
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
            message = f"the served agent {agent.name!r} failed: {err.__class__.__name__}: {err}"
            return JSONResponse({"error": {"message": message, "type": "server_error"}}, status_code=500)
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


def serve(agent: Agent, *, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 32) -> None:
    import uvicorn

    uvicorn.run(create_app(agent, max_batch=max_batch), host=host, port=port, log_level="info")
