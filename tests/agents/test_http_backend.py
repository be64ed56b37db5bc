"""The OpenAI-compatible backend against real HTTP servers on loopback."""

import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from dialogym.agents.base import Request, Sampling
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.models import tiny_model
from dialogym.agents.openai_http import BackendError, OpenAIAgent
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.server import create_app


class LoopbackServer:
    """Runs an ASGI app on 127.0.0.1 on a free port in a background thread; ``grace_s`` bounds
    how long shutting down waits for handlers still running (a server that never answers)."""

    def __init__(self, app, *, grace_s=None):
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=grace_s)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("loopback server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


class CountingAgent(TransformersAgent):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.batch_sizes = []

    def act(self, requests):
        self.batch_sizes.append(len(requests))
        return super().act(requests)


@pytest.fixture(scope="module")
def tiny_server():
    model, tokenizer = tiny_model()
    agent = CountingAgent(model, tokenizer, name="tiny")
    with LoopbackServer(create_app(agent)) as server:
        server.agent = agent
        yield server


def chat(text):
    return [{"role": "user", "content": text}]


def test_client_gets_the_same_greedy_text_as_the_local_backend(tiny_server):
    greedy = Sampling(temperature=0.0, max_new_tokens=10)
    client = OpenAIAgent(tiny_server.url, "tiny", logprobs=True)
    remote = client.act([Request(messages=chat("hello there"), sampling=greedy)])[0]
    local = tiny_server.agent.act([Request(messages=chat("hello there"), sampling=greedy)])[0]
    assert remote.text == local.text
    assert remote.logprobs == pytest.approx(local.logprobs, abs=1e-5)


def test_concurrent_requests_are_answered_in_order_and_batched_by_the_server(tiny_server):
    greedy = Sampling(temperature=0.0, max_new_tokens=6)
    prompts = [f"prompt number {i}" for i in range(12)]
    tiny_server.agent.batch_sizes.clear()
    replies = OpenAIAgent(tiny_server.url, "tiny", concurrency=12).act([Request(messages=chat(p), sampling=greedy) for p in prompts])
    expected = [tiny_server.agent.act([Request(messages=chat(p), sampling=greedy)])[0].text for p in prompts]
    assert [r.text for r in replies] == expected
    assert max(tiny_server.agent.batch_sizes) > 1  # concurrent clients shared a batch


def test_rollout_engine_plays_through_the_http_backend(tiny_server):
    engine = RolloutEngine({"remote": OpenAIAgent(tiny_server.url, "tiny")})
    specs = [EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats={"speaker": "remote", "listener": "remote"}) for i in range(3)]
    episodes = engine.run(specs)
    assert len(episodes) == 3 and all(e.turns for e in episodes)


def test_unknown_model_name_is_a_clear_4xx_error(tiny_server):
    with pytest.raises(BackendError, match="HTTP 404: model 'gpt-9' is not served here"):
        OpenAIAgent(tiny_server.url, "gpt-9").act([Request(messages=chat("x"))])


def flaky_app(fail_times, status=503):
    app = FastAPI()
    app.state.calls = 0

    @app.post("/v1/chat/completions")
    async def completions():
        app.state.calls += 1
        if app.state.calls <= fail_times:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=status)
        return {"choices": [{"message": {"role": "assistant", "content": "ok"}}]}

    @app.post("/bad/chat/completions")
    async def bad():
        return PlainTextResponse("<html>not json</html>")

    @app.post("/nocontent/chat/completions")
    async def nocontent():
        return {"choices": []}

    @app.post("/logprobs-{kind}/chat/completions")
    async def bad_logprobs(kind: str):
        content = {"nokey": [{"token": "a"}], "nonumber": [{"logprob": "high"}], "notalist": 5, "null": [None]}[kind]
        return {"choices": [{"message": {"content": "x"}, "logprobs": {"content": content}}]}

    return app


def test_server_errors_are_retried_with_backoff_then_succeed():
    app = flaky_app(fail_times=2)
    with LoopbackServer(app) as server:
        reply = OpenAIAgent(server.url, "m", backoff_s=0.01).act([Request(messages=chat("x"))])[0]
    assert reply.text == "ok" and app.state.calls == 3


def test_retries_give_up_with_the_status_and_message():
    app = flaky_app(fail_times=100)
    with LoopbackServer(app) as server, pytest.raises(BackendError, match="HTTP 503: overloaded"):
        OpenAIAgent(server.url, "m", backoff_s=0.01, max_retries=2).act([Request(messages=chat("x"))])
    assert app.state.calls == 3


def test_client_errors_are_not_retried():
    app = flaky_app(fail_times=100, status=400)
    with LoopbackServer(app) as server, pytest.raises(BackendError, match="HTTP 400"):
        OpenAIAgent(server.url, "m", backoff_s=0.01).act([Request(messages=chat("x"))])
    assert app.state.calls == 1


def test_malformed_json_is_a_clear_error():
    with LoopbackServer(flaky_app(0)) as server:
        base = server.url.removesuffix("/v1")
        with pytest.raises(BackendError, match="malformed completion"):
            OpenAIAgent(base + "/bad", "m").act([Request(messages=chat("x"))])
        with pytest.raises(BackendError, match="malformed completion"):
            OpenAIAgent(base + "/nocontent", "m").act([Request(messages=chat("x"))])


@pytest.mark.parametrize("kind", ["nokey", "nonumber", "notalist", "null"])
def test_malformed_logprobs_are_a_backend_error(kind):
    with LoopbackServer(flaky_app(0)) as server:
        base = server.url.removesuffix("/v1")
        with pytest.raises(BackendError, match="malformed completion"):
            OpenAIAgent(f"{base}/logprobs-{kind}", "m", logprobs=True).act([Request(messages=chat("x"))])


def test_an_agent_with_the_wrong_number_of_replies_fails_its_requests_and_the_server_keeps_serving():
    from dialogym.agents.base import Reply

    class DropsFirstBatch:
        name = "drops"

        def __init__(self):
            self.calls = 0

        def act(self, requests):
            self.calls += 1
            return [] if self.calls == 1 else [Reply(text="fine") for _ in requests]

    with LoopbackServer(create_app(DropsFirstBatch())) as server:
        client = OpenAIAgent(server.url, "drops", max_retries=0, timeout_s=10)
        with pytest.raises(BackendError, match="HTTP 500: .*returned 0 replies for 1 requests"):
            client.act([Request(messages=chat("x"))])
        assert client.act([Request(messages=chat("y"))])[0].text == "fine"


def test_unreachable_server_fails_after_retries():
    with pytest.raises(BackendError, match="no answer after 2 tries"):
        OpenAIAgent("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_s=0.01, timeout_s=2).act([Request(messages=chat("x"))])


def test_a_timeout_is_retried_then_reported():
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def slow():
        import asyncio

        await asyncio.sleep(2)
        return {"choices": [{"message": {"content": "late"}}]}

    with LoopbackServer(app) as server, pytest.raises(BackendError, match="no answer after 2 tries"):
        OpenAIAgent(server.url, "m", timeout_s=0.2, max_retries=1, backoff_s=0.01).act([Request(messages=chat("x"))])
