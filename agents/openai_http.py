"""OpenAI-compatible chat-completions backend (any server: vLLM, llama.cpp, TGI, ours...).

Each request goes out on its own (:meth:`OpenAIAgent.send`) and its reply comes back as soon
as the server answers, so the rollout engine routes it to its episode while slower requests
are still out. All of an agent's requests share one connection pool, on one event loop per
process (a thread of its own). At most ``concurrency`` requests are out at once; unset, the
caller's bound applies (the rollout engine sends at most its ``max_concurrent``, the run's
``--concurrency``). A 429 lowers the bound (:class:`InFlightBound`) and the request is sent
again, without using up a retry, so a server's rate limit slows a run instead of failing
it; only a 429 to a request sent when the bound was already 1 counts as a failed try.

Every request is retried with exponential back-off on connection errors, timeouts, 408,
409, 429 and 5xx. Other 4xx answers and malformed JSON raise :class:`BackendError` with
the status and the server's message, so a bad model name or URL fails loudly instead of
becoming an invalid move.

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
import base64
import functools
import itertools
import json
import math
import os
import random
import ssl
import threading
import time
import urllib.parse
import urllib.request
import weakref
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from contextlib import asynccontextmanager
from dataclasses import dataclass
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


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0


def client_loop() -> asyncio.AbstractEventLoop:
    """The event loop every HTTP agent of this process sends on, running in a daemon thread
    of its own (started at the first request; a forked child starts its own)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, name="dialogym-http", daemon=True).start()
        return _loop


class InFlightBound:
    """How many of an agent's requests may be out at once, lowered when the server says 429.

    At most ``ceiling`` (None: no bound until a 429). A 429 halves the bound to half the
    requests then out (never below 1), once per round: 429s to requests sent before the
    last cut do not cut again. Every reply after raises it by ``1 / bound``, about one per
    round of replies, back up to ``ceiling`` (additive increase, multiplicative decrease, as
    TCP does). Used on :func:`client_loop` only, so it needs no lock.
    """

    def __init__(self, ceiling: int | None) -> None:
        self.ceiling = ceiling
        self._limit: float | None = ceiling
        self.out = 0
        self._sent = self._cut_at = 0
        self._freed: asyncio.Condition | None = None

    @property
    def limit(self) -> int | None:
        return None if self._limit is None else int(self._limit)

    @asynccontextmanager
    async def place(self) -> AsyncIterator[_Place]:
        """Wait for a place, hold it while the request is out."""
        self._freed = self._freed or asyncio.Condition()
        async with self._freed:
            await self._freed.wait_for(lambda: self._limit is None or self.out < int(self._limit))
            self.out += 1
            self._sent += 1
        place = _Place(self, self._sent, self.limit)
        try:
            yield place
        finally:
            self.out -= 1
            if not place.was_throttled and self._limit is not None:
                self._limit = min(self._limit + 1 / self._limit, self.ceiling or math.inf)
            async with self._freed:
                self._freed.notify_all()

    def _cut(self, number: int) -> None:
        if number > self._cut_at:
            self._limit = max(1.0, self.out // 2)
            self._cut_at = self._sent


@dataclass
class _Place:
    bound: InFlightBound
    number: int
    #: the bound when the request was sent
    limit: int | None
    was_throttled: bool = False

    def throttled(self) -> bool:
        """The server said 429: lower the bound. True when the bound takes it (the request is
        sent again without using up a retry), False when it was 1 already."""
        self.was_throttled = True
        self.bound._cut(self.number)
        return self.limit is None or self.limit > 1


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes
    seconds: float
    #: a 429 that lowered the in-flight bound (its retry is free)
    throttled: bool


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS settings of every client of this process (as httpx builds them for one client:
    certifi's certificates, ``SSL_CERT_FILE``); building them takes 20 to 50 ms, so once."""
    return httpx.create_ssl_context()


def _environment_proxy(url: str) -> str | None:
    """The proxy the environment's variables name for ``url``, as httpx's clients read them:
    ``HTTPS_PROXY``/``HTTP_PROXY`` by scheme, else ``ALL_PROXY`` (either case; a value with no
    scheme is an ``http://`` proxy); none for a host that ``NO_PROXY`` lists, nor for any
    host when one of its entries is ``*``. (httpx also reads the macOS and Windows system
    settings; this reads the variables only.)"""
    parts = urllib.parse.urlsplit(url)
    no_proxy = os.environ.get("no_proxy", os.environ.get("NO_PROXY", ""))
    if "*" in (entry.strip() for entry in no_proxy.split(",")) or urllib.request.proxy_bypass_environment(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _checked_proxy(proxy: str | None) -> str | None:
    """``proxy``, refused in one line when httpx cannot use it (made once per agent, so a bad
    variable fails when the agent is built rather than at every request)."""
    if proxy is None:
        return None
    try:
        httpx.AsyncHTTPTransport(proxy=proxy, verify=_tls_context())
    except (ValueError, ImportError) as err:
        raise ValueError(
            f"the proxy {proxy!r} from the environment (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY) cannot be used: {err}; "
            "fix the variable, or list the server's host in NO_PROXY"
        ) from None
    return proxy


#: closings of transports under way on the client loop (kept so that none is collected half done)
_closing: set[asyncio.Task[Any]] = set()


class _Pool:
    """An agent's connections, opened on :func:`client_loop` as needed and kept open between
    requests: one httpx transport of one connection per request out, an idle one reused and
    a new one made only when none is idle (so at most as many as the in-flight bound lets
    out). Requests go to the transport directly, built once per agent (the URL, headers and
    timeouts an ``httpx.AsyncClient`` would merge into each request), with the proxy the
    environment names for the URL.

    Measured on the client's CPU, no latency, 64 in flight: one pool of 64 connections cost
    about 3 ms a request (httpcore's pool checks every connection against every queued
    request at each request's start and end, a poll and a ``getpeername`` for each idle
    one); clients of one connection 0.4 to 0.7 ms a request less than clients of 8; the
    transport without the client's layers (URL merging, auth and redirect flows, cookies,
    hooks) another 0.6 to 0.8 ms. What those layers did that a chat completion needs is done
    here: the headers, the timeouts, the proxy, and Basic auth from a user and password in
    the base URL (when no API key is set). Cookies are not kept between requests.
    """

    def __init__(self, base_url: str, timeout_s: float, headers: dict[str, str]) -> None:
        url = httpx.URL(f"{base_url}/chat/completions")
        if url.username and not any(name.lower() == "authorization" for name in headers):
            headers = {**headers, "Authorization": "Basic " + base64.b64encode(f"{url.username}:{url.password}".encode()).decode()}
        self.url = url.copy_with(username=None, password=None) if url.username else url
        #: what httpx's client sends by default, the agent's headers and a JSON body
        self.headers = httpx.Headers({
            "accept": "*/*", "accept-encoding": "gzip, deflate", "connection": "keep-alive",
            "user-agent": f"python-httpx/{httpx.__version__}", "content-type": "application/json", **headers,
        })
        self.timeout = {"timeout": httpx.Timeout(timeout_s).as_dict()}
        self.proxy = _checked_proxy(_environment_proxy(str(self.url)))
        #: every transport made, and those with no request out (taken from the end)
        self.transports: list[httpx.AsyncHTTPTransport] = []
        self.idle: list[httpx.AsyncHTTPTransport] = []
        #: how many times :meth:`close` ran: a transport out across a close is not kept
        self.closes = 0

    def request(self, body: bytes) -> httpx.Request:
        """The POST of one chat completion."""
        return httpx.Request("POST", self.url, headers=self.headers, content=body, extensions=self.timeout)

    @asynccontextmanager
    async def transport(self) -> AsyncIterator[httpx.AsyncHTTPTransport]:
        """A transport with its connection free, for one request."""
        closes = self.closes
        if self.idle:
            transport = self.idle.pop()
        else:
            transport = httpx.AsyncHTTPTransport(
                verify=_tls_context(), proxy=self.proxy, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
            )
            self.transports.append(transport)
        try:
            yield transport
        finally:
            if self.closes == closes:
                self.idle.append(transport)

    def close(self) -> None:
        """Forget every transport and close them. On the client loop, where transports are
        taken and given back, so that none given back during a close is kept."""
        loop = _loop
        if loop is None or not loop.is_running() or _loop_pid != os.getpid():
            self._close_now(None)
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:  # on the loop already: at once
            self._close_now(loop)
            return
        try:
            loop.call_soon_threadsafe(self._close_now, loop)
        except RuntimeError:  # the loop closed meanwhile
            self._close_now(None)

    def _close_now(self, loop: asyncio.AbstractEventLoop | None) -> None:
        transports, self.transports, self.idle = self.transports, [], []
        self.closes += 1
        if transports and loop is not None:
            task = loop.create_task(_close_all(transports))
            _closing.add(task)
            task.add_done_callback(_closing.discard)


async def _close_all(transports: Sequence[httpx.AsyncHTTPTransport]) -> None:
    for transport in transports:
        await transport.aclose()


class OpenAIAgent:
    """A client of one model on one OpenAI-compatible server.

    ``api_key`` defaults to the environment variable ``api_key_env`` names; with neither
    given, ``OPENAI_API_KEY`` is used where set and no key is sent otherwise (local servers).
    ``guided``: the rollout engine sends this agent's requests with the seat's move grammar,
    which goes to the server as ``structured_outputs`` (a ``+guided`` spec). ``concurrency``:
    the most requests out at once (``?concurrency=`` in a spec); None leaves the bound to the
    caller (the rollout engine's ``max_concurrent``, the run's ``--concurrency``).
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
        concurrency: int | None = None,
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
        if max_retries < 0 or max_retry_after_s < 0 or max_reply_bytes < 1 or (concurrency is not None and concurrency < 1):
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
        #: The most requests out at once (None: as many as the caller sends).
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.deadline_s = deadline_s
        self.backoff_s = backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.max_reply_bytes = max_reply_bytes
        self.logprobs = logprobs
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._pool = _Pool(self.base_url, timeout_s, headers)
        self._bound = InFlightBound(concurrency)
        weakref.finalize(self, self._pool.close)

    @property
    def in_flight_bound(self) -> int | None:
        """How many requests may be out now: ``concurrency``, or lower after a 429 (None: no bound)."""
        return self._bound.limit

    def close(self) -> None:
        """Close the connection pool (a later request opens a new one)."""
        self._pool.close()

    def act(self, requests: Sequence[Request]) -> list[Reply]:
        """Send every request and return the replies in order (after an error, the rest are cancelled)."""
        futures = [self.send(request) for request in requests]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
            return [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()

    async def act_async(self, requests: Sequence[Request]) -> list[Reply]:
        """:meth:`act` for a caller on an event loop of its own."""
        return list(await asyncio.gather(*(asyncio.wrap_future(self.send(request)) for request in requests)))

    def send(self, request: Request) -> Future[Reply]:
        """Send one request now; its reply (or error) comes on the future as soon as the server
        answers. Thread-safe; cancelling the future abandons the request."""
        return asyncio.run_coroutine_threadsafe(self._complete(request), client_loop())

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

    async def _complete(self, request: Request) -> Reply:
        payload = self._payload(request)
        url = f"{self.base_url}/chat/completions"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        failures = throttles = 0  # failed tries that count against max_retries; 429s the bound took
        for tries in itertools.count(1):
            answer, deadline = await self._try(url, payload, deadline, tries)
            remaining = deadline - loop.time()
            if isinstance(answer, Exception):
                if remaining <= 0:
                    raise BackendError(self._past_deadline(url, tries)) from answer
                if failures == self.max_retries:
                    why = f"no complete reply within timeout_s={self.timeout_s:g} s" if isinstance(answer, TimeoutError) else repr(answer)
                    raise BackendError(f"{url}: no answer after {_tries(tries)}: {why}") from answer
                wait_s = self._delay(failures)
                failures += 1
            elif answer.status in RETRY_STATUSES and (answer.throttled or failures < self.max_retries):
                wait_s = self._retry_wait(url, answer, throttles if answer.throttled else failures, remaining)
                throttles, failures = (throttles + 1, failures) if answer.throttled else (throttles, failures + 1)
            else:
                return self._reply(url, request, payload, answer)
            await asyncio.sleep(max(0.0, min(wait_s, deadline - loop.time())))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _try(self, url: str, payload: dict[str, Any], deadline: float, tries: int) -> tuple[_Answer | Exception, float]:
        """One POST, holding a place of the in-flight bound while it is out: the answer (or the
        connection error or timeout), and the deadline, moved on by the wait for a place (the
        queue is ours, not the server's)."""
        loop = asyncio.get_running_loop()
        queued = loop.time()
        async with self._bound.place() as place:
            deadline += loop.time() - queued
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BackendError(self._past_deadline(url, tries - 1))
            started = time.perf_counter()
            try:
                async with asyncio.timeout(min(self.timeout_s, remaining)):
                    status, headers, body = await self._post(url, payload)
            except (httpx.TransportError, TimeoutError) as err:
                return err, deadline
            throttled = status == 429 and place.throttled()
            return _Answer(status, headers, body, time.perf_counter() - started, throttled), deadline

    def _retry_wait(self, url: str, answer: _Answer, attempt: int, remaining: float) -> float:
        """Seconds to wait before sending again after a retryable status; a ``Retry-After``
        past the deadline fails the request at once, with the server's message."""
        retry_after = answer.headers.get("retry-after")
        wait_s = self._delay(attempt, retry_after)
        if retry_after and wait_s >= remaining:
            raise BackendError(
                f"{url}: HTTP {answer.status}: {_server_message(answer.body)}; the server asks to retry after {retry_after} s "
                f"(waits are capped at {self.max_retry_after_s:g} s), past this request's {self.deadline_s:g} s deadline"
            )
        return wait_s

    def _reply(self, url: str, request: Request, payload: dict[str, Any], answer: _Answer) -> Reply:
        if answer.status >= 400:
            raise BackendError(f"{url}: HTTP {answer.status}: {_server_message(answer.body)}")
        reply, finish = _parse_completion(url, answer.body, answer.seconds, request.sampling.max_new_tokens)
        if "structured_outputs" in payload:
            reply.guided = self._kept_grammar(request, reply.text, finish)
        return reply

    async def _post(self, url: str, payload: dict[str, Any]) -> tuple[int, httpx.Headers, bytes]:
        """POST and read the reply body, refusing it past ``max_reply_bytes``."""
        cap = self.max_reply_bytes
        too_large = (
            f"{url}: the reply is larger than the {_size(cap)} cap (max_reply_bytes={cap}); a chat completion is far "
            "smaller, so this is not a completion server or it is misbehaving"
        )
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        async with self._pool.transport() as transport:
            response = await transport.handle_async_request(self._pool.request(body))
            try:
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
            finally:
                await response.aclose()

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
