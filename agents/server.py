"""A small OpenAI-compatible server that serves any dialogym agent (``dialogym serve``).

Concurrent HTTP requests are gathered into batches: a worker thread takes every request
that arrived while the previous batch ran (up to ``max_batch``) and answers them with one
``act`` call, so many clients share the model's batched generation. One bad request does not
fail its batchmates: when a batched ``act`` raises (or answers with the wrong number of
replies), the worker asks again for each of the batch's requests alone, so only the requests
that fail by themselves get an error (HTTP 500, or 422 for a grammar that breaks while
decoding) and the others their replies. The worker outlives whatever the agent raises.

Each request is checked before it reaches the batcher, cheapest check first, and refused
with the limit's name and value:

=====================  =========  ======  ==========================================================
limit                  default    status  what it caps
=====================  =========  ======  ==========================================================
``max_body_bytes``     1 MiB      413     the raw request body, while it is read (with or without a
                                          ``Content-Length``: a chunked body is counted as it arrives)
``max_messages``       256        413     the number of messages
``max_prompt_chars``   32,000     413     the characters of all messages together
``max_stop``           4          422     the number of (non-empty) ``stop`` strings, as OpenAI
``max_stop_chars``     64         422     the characters of each ``stop`` string
``max_context_tokens`` the model  413     prompt tokens + ``max_tokens``; the prompt is tokenized with
                                          the agent's ``encode`` (off the event loop and the batcher
                                          thread, after the character cap), and the default is the
                                          model's ``max_position_embeddings``. Agents without
                                          ``encode`` have the character cap only.
=====================  =========  ======  ==========================================================

Other checks, all 422 unless said: a string anywhere in the request with an unpaired UTF-16
surrogate (JSON ``"\\ud800"``; no tokenizer can encode it) is refused naming the field; a
grammar (``structured_outputs.grammar``) that llguidance cannot compile is refused with the
compiler's message. A grammar that compiles but can never end (``start: "a" start``) is not
reported by llguidance; it fails while decoding and the batch retry confines the failure to
its own request. Bad numbers (NaN, infinities, out of range) are 422, unsupported features
(``stream``, ``n`` > 1) 400.

OpenAI forms: ``content`` may be a string or a list of parts; text parts
(``{"type": "text", "text": ...}``) are joined with newlines (as vLLM does) and any other part
type (``image_url``, ``input_audio``, ...) is refused with 422 naming it. Empty ``stop``
strings are ignored (a reply cut at an empty string would always be empty). Every error body
is OpenAI's ``{"error": {"message": ..., "type": ...}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dialogym.envs.text import SURROGATE

from .base import Agent, Reply, Request, Sampling

log = logging.getLogger(__name__)



class ChatMessage(BaseModel):
    role: str
    #: A string, or OpenAI's list of content parts (only text parts are served).
    content: str | list[dict[str, Any]]


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
                replies = self._answer([item[0] for item in batch])
            except BaseException as err:  # noqa: BLE001 - nothing an agent raises may end the worker
                replies = [RuntimeError(f"the batch failed: {err!r}")] * len(batch)
            for (_, loop, future), reply in zip(batch, replies, strict=True):
                with contextlib.suppress(RuntimeError):  # a closed client loop: nobody waits for it
                    loop.call_soon_threadsafe(_resolve, future, reply)

    def _answer(self, requests: list[Request]) -> list[Reply | Exception]:
        """One reply or error per request: the batch in one call, else each request alone."""
        try:
            return list(self._act(requests))
        except Exception as err:
            if len(requests) == 1:
                return [err]
            log.warning("a batch of %d failed (%s: %s); answering its requests one at a time",
                        len(requests), err.__class__.__name__, err)
        answers: list[Reply | Exception] = []
        for request in requests:
            try:
                answers.extend(self._act([request]))
            except Exception as err:
                answers.append(err)
        return answers

    def _act(self, requests: list[Request]) -> list[Reply]:
        replies: list[Any] = list(self.agent.act(requests))
        if len(replies) != len(requests):
            raise RuntimeError(f"agent {self.agent.name!r} returned {len(replies)} replies for {len(requests)} requests")
        return replies


def _resolve(future: asyncio.Future, value: Any) -> None:
    if future.done():
        return
    if isinstance(value, Exception):
        future.set_exception(value)
    else:
        future.set_result(value)


def _error(status: int, message: str, kind: str = "invalid_request_error", **extra: Any):
    from fastapi.responses import JSONResponse

    # A message quoting the request or an exception may hold a lone surrogate, which JSON
    # cannot be written in UTF-8 with: escape it rather than fail the error response.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": {"message": message, "type": kind}, **extra}, status_code=status)


class BodyCap:
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


def _unpaired_surrogate(value: Any, path: tuple[str, ...] = ()) -> str | None:
    """Where (``messages.0.content``) and what the first unpaired surrogate in ``value`` is."""
    if isinstance(value, str):
        found = SURROGATE.search(value)
        if found:
            return f"{'.'.join(path) or 'body'}: an unpaired UTF-16 surrogate (\\u{ord(found.group()):04x} at " \
                   f"character {found.start()}) is not valid Unicode; send each surrogate with its pair"
    elif isinstance(value, dict):
        for key, item in value.items():
            if (where := _unpaired_surrogate(item, (*path, str(key)))) is not None:
                return where
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (where := _unpaired_surrogate(item, (*path, str(index)))) is not None:
                return where
    return None


def _text(content: str | list[dict[str, Any]], where: str) -> str:
    """A message's text: the string, or its text parts joined with newlines (as vLLM does);
    ``ValueError`` naming the part for anything but text."""
    if isinstance(content, str):
        return content
    texts = []
    for index, part in enumerate(content):
        kind = part.get("type")
        if kind != "text":
            raise ValueError(f"{where}.{index}: content parts of type {kind!r} are not supported; this server "
                             "serves text only (parts of type 'text')")
        text = part.get("text")
        if not isinstance(text, str):
            raise ValueError(f"{where}.{index}.text: a text part needs a string 'text'")
        texts.append(text)
    return "\n".join(texts)


def _token_counter(agent: Agent, max_context_tokens: int | None) -> tuple[Callable[[list[dict[str, str]]], Sequence[int]], int] | None:
    """The agent's prompt encoder and the context it must fit, or None (no token cap)."""
    encode = getattr(agent, "encode", None)
    if not callable(encode):
        return None
    context = max_context_tokens
    if context is None:
        config = getattr(getattr(agent, "model", None), "config", None)
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, key, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                context = value
                break
    return (encode, context) if context is not None else None


def create_app(
    agent: Agent,
    *,
    model_name: str | None = None,
    max_batch: int = 32,
    max_prompt_chars: int = 32_000,
    max_body_bytes: int = 1024 * 1024,
    max_messages: int = 256,
    max_stop: int = 4,
    max_stop_chars: int = 64,
    max_context_tokens: int | None = None,
):
    """A FastAPI app with ``/v1/models`` and ``/v1/chat/completions``.

    ``max_prompt_chars`` caps the characters of a request's messages together (one long
    prompt would hold the batcher, and so every client, for minutes); ``max_body_bytes``
    caps the raw request body; ``max_messages`` the number of messages; ``max_stop`` and
    ``max_stop_chars`` the ``stop`` strings; ``max_context_tokens`` (default: the model's
    ``max_position_embeddings``) the prompt's tokens plus ``max_tokens``, where the agent has
    an ``encode`` to count them with. See the module's docstring for what each refusal is.
    """
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from .guidance import GrammarError

    name = model_name or agent.name
    batcher = _Batcher(agent, max_batch)
    counter = _token_counter(agent, max_context_tokens)
    limits = _Limits(max_messages, max_prompt_chars, max_stop, max_stop_chars)
    app = FastAPI(title="dialogym model server")
    app.state.batcher = batcher
    app.add_middleware(BodyCap, limit=max_body_bytes)

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

    @app.exception_handler(Exception)
    async def crashed(_request: Any, exc: Exception) -> Any:
        return _error(500, f"internal error: {exc.__class__.__name__}: {exc}", "server_error")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "dialogym"}]}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> Any:
        try:
            request = await _checked(body, limits, name, counter)
        except _Refused as refused:
            return _error(refused.status, refused.message)
        try:
            reply: Reply = await batcher.submit(request)
        except GrammarError as err:  # answered alone, so its own grammar broke while decoding
            return _error(422, f"invalid request: structured_outputs.grammar: the grammar failed while decoding: "
                               f"{_compiler_message(err)}")
        except Exception as err:
            return _error(500, f"the served agent {agent.name!r} failed: {err.__class__.__name__}: {err}", "server_error")
        return _completion(reply, name, logprobs=body.logprobs)

    return app


@dataclass(frozen=True)
class _Limits:
    messages: int
    prompt_chars: int
    stop: int
    stop_chars: int


class _Refused(Exception):
    """A request refused before it reaches the batcher: its HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def _checked(body: ChatRequest, limits: _Limits, name: str, counter: Any) -> Request:
    """The batcher's request for ``body``, or :class:`_Refused` saying which check failed
    (cheapest first, so a huge prompt is refused before it is tokenized)."""
    from .guidance import GrammarError, check_grammar

    if len(body.messages) > limits.messages:
        raise _Refused(413, f"the request has {len(body.messages)} messages, over this server's cap of {limits.messages} "
                            "(max_messages); shorten the conversation")
    if (where := _unpaired_surrogate(body.model_dump())) is not None:
        raise _Refused(422, f"invalid request: {where}")
    if body.model not in (None, name):
        raise _Refused(404, f"model {body.model!r} is not served here; this server serves {name!r}")
    if body.stream:
        raise _Refused(400, "stream: true is not supported; this server sends each reply whole, ask without 'stream'")
    if body.n != 1:
        raise _Refused(400, f"n={body.n} is not supported; this server gives one choice per request, send {body.n} "
                            "requests instead (they are batched together)")
    try:
        messages = [{"role": m.role, "content": _text(m.content, f"messages.{i}.content")} for i, m in enumerate(body.messages)]
    except ValueError as err:
        raise _Refused(422, f"invalid request: {err}") from None
    prompt_chars = sum(len(m["content"]) for m in messages)
    if prompt_chars > limits.prompt_chars:
        raise _Refused(413, f"the prompt has {prompt_chars} characters, over this server's cap of {limits.prompt_chars} "
                            "(max_prompt_chars); shorten the conversation")
    stop = _stop_strings(body.stop, limits)
    grammar = body.structured_outputs.grammar if body.structured_outputs else None
    if grammar is not None:
        try:
            await asyncio.to_thread(check_grammar, grammar)
        except GrammarError as err:
            raise _Refused(422, f"invalid request: structured_outputs.grammar: {_compiler_message(err)}") from None
    if counter is not None:
        await _check_context(messages, body.max_tokens, *counter)
    sampling = Sampling(temperature=body.temperature, top_p=body.top_p, max_new_tokens=body.max_tokens, stop=stop,
                        guided=grammar is not None)
    return Request(messages=messages, sampling=sampling, seed=body.seed, grammar=grammar)


def _stop_strings(stop: str | list[str] | None, limits: _Limits) -> tuple[str, ...]:
    """The request's stop strings, empty ones dropped (a reply cut at an empty string would
    always be empty), within the caps."""
    kept = tuple(s for s in ([stop] if isinstance(stop, str) else list(stop or ())) if s)
    if len(kept) > limits.stop:
        raise _Refused(422, f"invalid request: stop: {len(kept)} stop strings, over this server's cap of {limits.stop} (max_stop)")
    if (longest := max((len(s) for s in kept), default=0)) > limits.stop_chars:
        raise _Refused(422, f"invalid request: stop: a stop string of {longest} characters, over this server's cap of "
                            f"{limits.stop_chars} per string (max_stop_chars)")
    return kept


async def _check_context(messages: list[dict[str, str]], max_tokens: int, encode: Callable, context: int) -> None:
    """Refuse a prompt whose tokens plus ``max_tokens`` overflow the model's context."""
    try:
        # In a worker thread: neither the event loop nor the batcher waits for it, and the
        # character cap has already refused the prompts that would take long.
        tokens = len(await asyncio.to_thread(encode, messages))
    except Exception as err:
        raise _Refused(422, f"invalid request: messages: the served model's tokenizer refused the prompt: "
                            f"{err.__class__.__name__}: {err}") from None
    if tokens + max_tokens > context:
        raise _Refused(413, f"the prompt has {tokens} tokens and max_tokens is {max_tokens}: together over the model's "
                            f"context of {context} tokens (max_context_tokens); shorten the conversation or ask for fewer "
                            "tokens")


def _completion(reply: Reply, name: str, *, logprobs: bool) -> dict[str, Any]:
    """OpenAI's chat-completion body of ``reply``."""
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": "stop"}
    if logprobs and reply.logprobs is not None:
        tokens = zip(reply.token_ids or [], reply.logprobs, strict=False)
        choice["logprobs"] = {"content": [{"token": str(t), "logprob": lp} for t, lp in tokens]}
    prompt_tokens, completion_tokens = len(reply.prompt_token_ids or []), len(reply.token_ids or [])
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "choices": [choice],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _compiler_message(err: Exception) -> str:
    """llguidance's message without the grammar and the parser state it quotes (the client
    sent the one, the other is pages of llguidance internals)."""
    return re.split(r"\n--- grammar ---|\n?<state>", str(err), maxsplit=1)[0].strip()


def serve(
    agent: Agent,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 32,
    max_prompt_chars: int = 32_000,
    max_body_bytes: int = 1024 * 1024,
    max_messages: int = 256,
    max_stop: int = 4,
    max_stop_chars: int = 64,
    max_context_tokens: int | None = None,
) -> None:
    import uvicorn

    app = create_app(agent, max_batch=max_batch, max_prompt_chars=max_prompt_chars, max_body_bytes=max_body_bytes,
                     max_messages=max_messages, max_stop=max_stop, max_stop_chars=max_stop_chars,
                     max_context_tokens=max_context_tokens)
    uvicorn.run(app, host=host, port=port, log_level="info")
