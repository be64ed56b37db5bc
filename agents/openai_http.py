"""OpenAI-compatible chat-completions backend (any server: vLLM, llama.cpp, TGI, ours...).

Requests of a batch go out concurrently (bounded by ``concurrency``), each with retries and
exponential back-off on connection errors, timeouts, 429 and 5xx. Other 4xx answers and
malformed JSON raise :class:`BackendError` with the status and the server's message, so a
bad model name or URL fails loudly instead of becoming an invalid move.

A misbehaving server cannot stall a run or fill the client's memory: each attempt has
``timeout_s`` from request to last byte, each request ``deadline_s`` over all its attempts
and waits (a server that drips bytes is cut off there), a ``Retry-After`` is honoured up to
``max_retry_after_s`` and never past the deadline, the body is streamed and refused past
``max_reply_bytes``, and a reply's text may not exceed ``REPLY_CHARS_PER_TOKEN`` characters
per requested token (no tokenizer has tokens that long; a server that sends more is not
honouring ``max_tokens``).

What a server is sent and what it sends back are checked like any untrusted text: message
contents are defused (:mod:`.defuse`: no special-token string of a widespread chat template
reaches the server's template whole), a reply whose content is null is an error that says
what the server did instead (a refusal, tool calls, reasoning only, the token cap), and a
guided reply (``+guided``: the move grammar sent as ``structured_outputs``) is checked
against its grammar. A server that ignores grammars (llama.cpp's server, say) is found out
by its first reply that breaks one, and the run stops with :class:`GrammarIgnored` instead
of recording free replies as guided.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

from dialogym.envs.core import excerpt
from dialogym.envs.text import storable

from .base import Reply, Request
from .defuse import defuse_messages
from .guidance import accepts

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: The most characters a reply may have per requested token (``max_new_tokens``).
REPLY_CHARS_PER_TOKEN = 64
#: The environment variable the API key is read from unless ``api_key_env`` names another.
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


class BackendError(RuntimeError):
    """A model server answered with an error, or with something that is not a completion."""


class GrammarIgnored(BackendError):
    """A guided reply broke its move grammar: the server does not honour grammars."""


class OpenAIAgent:
    """A client of one model on one OpenAI-compatible server.

    ``api_key`` defaults to the environment variable ``api_key_env`` names; with neither
    given, ``OPENAI_API_KEY`` is used where set and no key is sent otherwise (local servers).
    ``guided``: the rollout engine sends this agent's requests with the seat's move grammar,
    which goes to the server as ``structured_outputs`` (a ``+guided`` spec).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        name: str | None = None,
        guided: bool = False,
        api_key: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 16,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        deadline_s: float = 180.0,
        backoff_s: float = 0.5,
        max_retry_after_s: float = 30.0,
        max_reply_bytes: int = 4 * 1024 * 1024,
        logprobs: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base url must start with http:// or https://, got {base_url!r}")
        for label, value in (("timeout_s", timeout_s), ("deadline_s", deadline_s)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")
        if max_retries < 0 or max_retry_after_s < 0 or max_reply_bytes < 1 or concurrency < 1:
            raise ValueError(
                f"need max_retries >= 0, max_retry_after_s >= 0, max_reply_bytes >= 1 and concurrency >= 1; got "
                f"{max_retries}, {max_retry_after_s}, {max_reply_bytes} and {concurrency}"
            )
        self.model = model
        self.name = name or f"openai:{base_url}#{model}"
        self.guided = guided
        if api_key is None and api_key_env is not None:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise ValueError(f"{self.name}: the API key variable {api_key_env!r} (api_key_env) is not set; export it")
        self.api_key = api_key if api_key is not None else os.environ.get(DEFAULT_API_KEY_ENV) or None
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.deadline_s = deadline_s
        self.backoff_s = backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.max_reply_bytes = max_reply_bytes
        self.logprobs = logprobs

    def act(self, requests: Sequence[Request]) -> list[Reply]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.act_async(requests))
        # Called from inside an event loop (a notebook, say): run in a thread of our own.
        result: list[Reply] = []
        error: list[BaseException] = []

        def target() -> None:
            try:
                result.extend(asyncio.run(self.act_async(requests)))
            except BaseException as err:  # re-raised in the caller's thread
                error.append(err)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if error:
            raise error[0]
        return result

    async def act_async(self, requests: Sequence[Request]) -> list[Reply]:
        limit = asyncio.Semaphore(self.concurrency)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_s, headers=headers) as client:

            async def one(request: Request) -> Reply:
                async with limit:
                    return await self._complete(client, request)

            return list(await asyncio.gather(*(one(r) for r in requests)))

    def _payload(self, request: Request) -> dict[str, Any]:
        s = request.sampling
        payload: dict[str, Any] = {
            "model": self.model,
            # the server's template is unknown: defuse the special tokens of widespread ones
            "messages": defuse_messages(request.messages),
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_new_tokens,
        }
        if s.stop:
            payload["stop"] = list(s.stop)
        if request.seed is not None:
            payload["seed"] = request.seed
        if s.guided and request.grammar:
            # vLLM's server (>= 0.12) and `dialogym serve` read the grammar here
            payload["structured_outputs"] = {"grammar": request.grammar}
        if self.logprobs:
            payload["logprobs"] = True
        return payload

    async def _complete(self, client: httpx.AsyncClient, request: Request) -> Reply:
        payload = self._payload(request)
        url = f"{self.base_url}/chat/completions"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        for attempt in range(self.max_retries + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BackendError(self._past_deadline(url, attempt))
            started = time.perf_counter()
            try:
                async with asyncio.timeout(min(self.timeout_s, remaining)):
                    status, headers, body = await self._post(client, url, payload)
            except (httpx.TransportError, TimeoutError) as err:
                if deadline - loop.time() <= 0:
                    raise BackendError(self._past_deadline(url, attempt + 1)) from err
                if attempt == self.max_retries:
                    why = f"no complete reply within timeout_s={self.timeout_s:g} s" if isinstance(err, TimeoutError) else repr(err)
                    raise BackendError(f"{url}: no answer after {_tries(attempt + 1)}: {why}") from err
                await asyncio.sleep(min(self._delay(attempt), deadline - loop.time()))
                continue
            if status in RETRY_STATUSES and attempt < self.max_retries:
                retry_after = headers.get("retry-after")
                wait = self._delay(attempt, retry_after)
                if retry_after and wait >= deadline - loop.time():
                    raise BackendError(
                        f"{url}: HTTP {status}: {_server_message(body)}; the server asks to retry after {retry_after} s "
                        f"(waits are capped at {self.max_retry_after_s:g} s), past this request's {self.deadline_s:g} s deadline"
                    )
                await asyncio.sleep(min(wait, deadline - loop.time()))
                continue
            if status >= 400:
                raise BackendError(f"{url}: HTTP {status}: {_server_message(body)}")
            reply, finish = _parse_completion(url, body, time.perf_counter() - started, request.sampling.max_new_tokens)
            if "structured_outputs" in payload:
                reply.guided = self._kept_grammar(request, reply.text, finish)
            return reply
        raise BackendError(f"{url}: gave up after {_tries(self.max_retries + 1)}")  # pragma: no cover

    async def _post(self, client: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> tuple[int, httpx.Headers, bytes]:
        """POST and read the reply body, refusing it past ``max_reply_bytes``."""
        cap = self.max_reply_bytes
        too_large = (
            f"{url}: the reply is larger than the {_size(cap)} cap (max_reply_bytes={cap}); a chat completion is far "
            "smaller, so this is not a completion server or it is misbehaving"
        )
        async with client.stream("POST", "/chat/completions", json=payload) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise BackendError(f"{too_large} (it announced {_size(int(declared))})")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise BackendError(too_large)
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)

    def _kept_grammar(self, request: Request, text: str, finish: str | None) -> bool:
        """True when a guided reply kept its grammar (or, cut at its token cap, began a string
        the grammar accepts); else the server ignored the grammar: :class:`GrammarIgnored`.

        A server that honours grammars never breaks one, so one broken reply is proof, and a
        run must not record replies decoded without the grammar as guided ones (benchmarks
        would mislabel the model; trainers would replay masks over tokens never sampled
        under them).
        """
        grammar = request.grammar or ""
        if accepts(grammar, storable(text)[0], prefix=finish == "length"):
            return True
        raise GrammarIgnored(
            f"{self.base_url} (model {self.model!r}) ignores move grammars: a +guided reply broke the seat's grammar "
            f"(reply {excerpt(text, 80)}, finish_reason {finish!r}); guided moves need a server that reads "
            "`structured_outputs` (vLLM >= 0.10.2, `dialogym serve`); play this model without +guided"
        )

    def _past_deadline(self, url: str, tries: int) -> str:
        return (
            f"{url}: no complete answer within this request's {self.deadline_s:g} s deadline ({_tries(tries)}); the "
            "server is down, overloaded or too slow; set a longer one with deadline_s= or '?deadline=' in the spec"
        )

    def _delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_retry_after_s)
            except ValueError:
                pass
        return self.backoff_s * (2**attempt) * (0.5 + random.random())


def _tries(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def _server_message(body: bytes) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body[:500].decode("utf-8", "replace") or "(empty body)"
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return str(parsed["error"].get("message", parsed["error"]))[:2000]
    if isinstance(parsed, dict) and "detail" in parsed:  # FastAPI-style servers
        return str(parsed["detail"])[:2000]
    return str(parsed)[:500]


def _parse_completion(url: str, body: bytes, latency: float, max_new_tokens: int) -> tuple[Reply, str | None]:
    """The reply of a completion body, and its ``finish_reason``."""
    try:
        parsed = json.loads(body)
        choice = parsed["choices"][0]
        message = choice["message"]
        text = message["content"]
        finish = choice.get("finish_reason")
        logprobs_field = choice.get("logprobs")
        content = logprobs_field.get("content") if isinstance(logprobs_field, dict) else None
        logprobs = [float(item["logprob"]) for item in content] if content else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        raise BackendError(f"{url}: malformed completion ({err.__class__.__name__}: {err}): {body[:300]!r}") from err
    if text is None:
        raise BackendError(f"{url}: the server sent no reply text ({_why_no_content(message, finish)})")
    if not isinstance(text, str):
        raise BackendError(f"{url}: malformed completion: message content is {type(text).__name__}, not text")
    most = max(1, max_new_tokens) * REPLY_CHARS_PER_TOKEN
    if len(text) > most:
        raise BackendError(
            f"{url}: the reply has {len(text)} characters for max_tokens={max_new_tokens} (at most {most}, "
            f"{REPLY_CHARS_PER_TOKEN} per token, are accepted); the server is not honouring max_tokens"
        )
    return Reply(text=text, logprobs=logprobs, latency_s=latency), finish if isinstance(finish, str) else None


def _why_no_content(message: Any, finish: Any) -> str:
    """What a completion whose message content is null did instead, for the error."""
    parts = [f"message content null, finish_reason {finish!r}"]
    if isinstance(message, dict):
        if message.get("refusal"):
            parts.append(f"refusal {excerpt(str(message['refusal']), 120)}")
        if message.get("tool_calls"):
            parts.append("it called tools instead of answering; dialogym games take text replies")
        if message.get("reasoning_content") or message.get("reasoning"):
            parts.append("it spent the reply on reasoning; raise max_new_tokens or turn reasoning off")
    if finish == "length" and len(parts) == 1:
        parts.append("it stopped at max_tokens before writing any text")
    return "; ".join(parts)
