"""OpenAI-compatible chat-completions backend (any server: vLLM, llama.cpp, TGI, ours...).

Requests of a batch go out concurrently (bounded by ``concurrency``), each with a timeout
and retries with exponential back-off on connection errors, 429 and 5xx. Other 4xx
answers and malformed JSON raise :class:`BackendError` with the status and the server's
message, so a bad model name or URL fails loudly instead of becoming an invalid move.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

from .base import Reply, Request

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class BackendError(RuntimeError):
    """A model server answered with an error, or with something that is not a completion."""


class OpenAIAgent:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        name: str | None = None,
        api_key: str | None = None,
        concurrency: int = 16,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        logprobs: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base url must start with http:// or https://, got {base_url!r}")
        self.model = model
        self.name = name or f"openai:{base_url}#{model}"
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
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
            "messages": request.messages,
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
        for attempt in range(self.max_retries + 1):
            started = time.perf_counter()
            try:
                response = await client.post("/chat/completions", json=payload)
            except (httpx.TransportError, httpx.TimeoutException) as err:
                if attempt == self.max_retries:
                    raise BackendError(f"{url}: no answer after {attempt + 1} tries: {err!r}") from err
                await asyncio.sleep(self._delay(attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                await asyncio.sleep(self._delay(attempt, response.headers.get("retry-after")))
                continue
            if response.status_code >= 400:
                raise BackendError(f"{url}: HTTP {response.status_code}: {_server_message(response)}")
            return _parse_completion(url, response, time.perf_counter() - started)
        raise BackendError(f"{url}: gave up after {self.max_retries + 1} tries")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), 60.0)
            except ValueError:
                pass
        return self.backoff_s * (2**attempt) * (0.5 + random.random())


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return str(body["error"].get("message", body["error"]))
        if isinstance(body, dict) and "detail" in body:  # FastAPI-style servers
            return str(body["detail"])
        return str(body)[:500]
    except ValueError:
        return response.text[:500] or "(empty body)"


def _parse_completion(url: str, response: httpx.Response, latency: float) -> Reply:
    try:
        body = response.json()
        choice = body["choices"][0]
        text = choice["message"]["content"]
        logprobs_field = choice.get("logprobs")
        content = logprobs_field.get("content") if isinstance(logprobs_field, dict) else None
        logprobs = [float(item["logprob"]) for item in content] if content else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        raise BackendError(f"{url}: malformed completion ({err.__class__.__name__}: {err}): {response.text[:300]!r}") from err
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise BackendError(f"{url}: malformed completion: message content is {type(text).__name__}, not text")
    return Reply(text=text, logprobs=logprobs, latency_s=latency)
