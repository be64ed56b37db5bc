"""A misbehaving server cannot stall or flood the HTTP client, and one client cannot block
`dialogym serve` for the others. Fake servers run on loopback; every wait is bounded."""

import asyncio
import json
import time

import httpx
import openai
import pytest
from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.responses import JSONResponse, Response, StreamingResponse

from dialogym.agents.base import Reply, Request, Sampling
from dialogym.agents.guidance import accepts
from dialogym.agents.models import tiny_model
from dialogym.agents.openai_http import BackendError, OpenAIAgent
from dialogym.agents.server import create_app
from dialogym.agents.specs import SpecError, load_agent, parse_spec
from tests.agents.test_http_backend import CountingAgent, LoopbackServer


def ask(agent, text="x", **sampling):
    return agent.act([Request(messages=[{"role": "user", "content": text}], sampling=Sampling(**sampling))])[0]


def completion(text):
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def misbehaving_app():
    app = FastAPI()
    app.state.calls = 0

    @app.post("/huge/v1/chat/completions")
    async def huge():
        async def chunks():  # 16 MiB, sent chunked: no Content-Length to refuse it by
            for _ in range(256):
                yield b"x" * 65536

        return StreamingResponse(chunks(), media_type="application/json")

    @app.post("/announced/v1/chat/completions")
    async def announced():
        return Response(b" " * (5 * 2**20), media_type="application/json")

    @app.post("/long/v1/chat/completions")
    async def long_text():
        return completion("a" * 2000)

    @app.post("/drip/v1/chat/completions")
    async def drip():
        async def bytes_slowly():  # never stalls long enough for a read timeout
            for _ in range(400):
                yield b" "
                await asyncio.sleep(0.05)

        return StreamingResponse(bytes_slowly(), media_type="application/json")

    @app.post("/silent/v1/chat/completions")
    async def silent():
        app.state.calls += 1
        await asyncio.sleep(30)

    @app.post("/later/v1/chat/completions")
    async def later():
        app.state.calls += 1
        if app.state.calls == 1:
            return JSONResponse({"error": {"message": "come back in an hour"}}, status_code=503, headers={"Retry-After": "3600"})
        return completion("ok")

    @app.post("/busy/v1/chat/completions")
    async def busy():
        app.state.calls += 1
        return JSONResponse({"error": {"message": "come back in an hour"}}, status_code=503, headers={"Retry-After": "3600"})

    @app.post("/gzip/v1/chat/completions")
    async def gzipped(request: HTTPRequest):
        import gzip

        body = json.dumps(completion(request.headers.get("accept-encoding", ""))).encode()
        return Response(gzip.compress(body), media_type="application/json", headers={"Content-Encoding": "gzip"})

    @app.post("/echo-key/v1/chat/completions")
    async def echo_key(request: HTTPRequest):
        return completion(request.headers.get("authorization", ""))

    return app


@pytest.fixture
def fake():
    app = misbehaving_app()
    with LoopbackServer(app, grace_s=0.2) as server:
        server.app = app
        server.base = server.url.removesuffix("/v1")
        yield server


# -- the client: size caps ----------------------------------------------------------------


def test_a_reply_body_over_the_default_4_mib_cap_is_refused_while_streaming(fake):
    with pytest.raises(BackendError, match=r"/huge/v1/chat/completions: the reply is larger than the 4\.0 MiB cap"):
        ask(OpenAIAgent(f"{fake.base}/huge/v1", "m", max_retries=0))


def test_the_reply_byte_cap_is_settable_and_a_too_large_announced_length_is_refused_unread(fake):
    with pytest.raises(BackendError, match="larger than the 1000 bytes cap"):
        ask(OpenAIAgent(f"{fake.base}/long/v1", "m", max_reply_bytes=1000))
    with pytest.raises(BackendError, match=r"cap .*announced 5\.0 MiB"):
        ask(OpenAIAgent(f"{fake.base}/announced/v1", "m"))


def test_a_reply_text_over_64_characters_per_requested_token_is_refused(fake):
    agent = OpenAIAgent(f"{fake.base}/long/v1", "m")
    with pytest.raises(BackendError, match="2000 characters for max_tokens=16 .*not honouring max_tokens"):
        ask(agent, max_new_tokens=16)
    assert ask(agent, max_new_tokens=32).text == "a" * 2000  # 32 * 64 = 2048 characters allowed


def test_a_gzipped_reply_is_read_and_the_cap_counts_its_decoded_bytes(fake):
    assert "gzip" in ask(OpenAIAgent(f"{fake.base}/gzip/v1", "m")).text  # the agent asks for it, and reads it
    with pytest.raises(BackendError, match="larger than the 20 bytes cap"):
        ask(OpenAIAgent(f"{fake.base}/gzip/v1", "m", max_reply_bytes=20))


@pytest.mark.parametrize("env,url,proxy", [
    ({"HTTPS_PROXY": "http://proxy:3128"}, "https://api.example.com/v1/chat/completions", "http://proxy:3128"),
    ({"HTTPS_PROXY": "http://proxy:3128"}, "http://api.example.com/v1/chat/completions", None),  # not for http
    ({"HTTP_PROXY": "http://p:1", "ALL_PROXY": "http://all:2"}, "https://x.org/v1/chat/completions", "http://all:2"),
    ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "example.com"}, "https://api.example.com/v1/chat/completions", None),
    ({}, "https://api.example.com/v1/chat/completions", None),
    ({"https_proxy": "proxy.corp:3128"}, "https://api.example.com/v1/chat/completions", "http://proxy.corp:3128"),  # no scheme: http
    ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "localhost, *"}, "https://api.example.com/v1/chat/completions", None),
])
def test_requests_go_through_the_proxy_the_environment_names(monkeypatch, env, url, proxy):
    from dialogym.agents.openai_http import _environment_proxy

    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _environment_proxy(url) == proxy


@pytest.mark.parametrize("value", ["socks://proxy:1080", "ftp://proxy:21"])
def test_a_proxy_httpx_cannot_use_is_one_clear_error_when_the_agent_is_built(monkeypatch, value):
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", value)
    with pytest.raises(ValueError, match=r"the proxy .* from the environment .* cannot be used: .*NO_PROXY"):
        OpenAIAgent("https://api.example.com/v1", "m")
    monkeypatch.setenv("NO_PROXY", "api.example.com")
    OpenAIAgent("https://api.example.com/v1", "m")  # a host the proxy is not for: no error


def test_a_user_and_password_in_the_base_url_are_sent_as_basic_auth_and_kept_out_of_the_url(fake):
    import base64

    host = fake.base.removeprefix("http://")
    got = ask(OpenAIAgent(f"http://me:s%3Acret@{host}/echo-key/v1", "m")).text
    assert got == "Basic " + base64.b64encode(b"me:s:cret").decode()
    assert ask(OpenAIAgent(f"http://me:pw@{host}/echo-key/v1", "m", api_key="sk-given")).text == "Bearer sk-given"


# -- the client: timeouts, retries, deadline, Retry-After ------------------------------------


def test_a_server_dripping_bytes_is_cut_off_at_the_deadline(fake):
    agent = OpenAIAgent(f"{fake.base}/drip/v1", "m", timeout_s=5, max_retries=3, deadline_s=0.6)
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"no complete answer within this request's 0\.6 s deadline"):
        ask(agent)
    assert time.monotonic() - started < 2.5


def test_a_silent_server_is_cut_off_at_the_deadline_over_all_retries(fake):
    agent = OpenAIAgent(f"{fake.base}/silent/v1", "m", timeout_s=0.3, max_retries=10, deadline_s=0.8, backoff_s=0.01)
    started = time.monotonic()
    with pytest.raises(BackendError, match="deadline"):
        ask(agent)
    assert time.monotonic() - started < 2.5
    assert 2 <= fake.app.state.calls <= 4


def test_retry_after_is_capped(fake):
    started = time.monotonic()
    reply = ask(OpenAIAgent(f"{fake.base}/later/v1", "m", max_retry_after_s=0.05))
    assert reply.text == "ok" and fake.app.state.calls == 2
    assert time.monotonic() - started < 2.5


def test_a_retry_after_past_the_deadline_fails_at_once_with_the_servers_message(fake):
    started = time.monotonic()
    with pytest.raises(BackendError, match="HTTP 503: come back in an hour; the server asks to retry after 3600 s"):
        ask(OpenAIAgent(f"{fake.base}/busy/v1", "m", deadline_s=5))  # the 30 s cap is still past 5 s
    assert time.monotonic() - started < 2.5 and fake.app.state.calls == 1


# -- the client: model-spec options and the API key --------------------------------------------


def test_openai_spec_options_set_timeout_retries_deadline_and_key_variable(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-mine")
    spec = parse_spec("openai:http://127.0.0.1:8000/v1#smol?timeout=5&retries=2&deadline=30&api_key_env=MY_KEY")
    assert spec.target == "http://127.0.0.1:8000/v1#smol"
    assert dict(spec.options) == {"timeout_s": 5.0, "max_retries": 2, "deadline_s": 30.0, "api_key_env": "MY_KEY"}
    agent = load_agent(spec.raw)
    assert (agent.base_url, agent.model) == ("http://127.0.0.1:8000/v1", "smol")
    assert (agent.timeout_s, agent.max_retries, agent.deadline_s, agent.api_key) == (5.0, 2, 30.0, "sk-mine")


@pytest.mark.parametrize(
    "query,fragment",
    [
        ("timout=5", "unknown option 'timout'; use timeout, retries, deadline, api_key_env"),
        ("timeout=soon", "option timeout='soon' is not a number"),
        ("retries=1.5", "option retries='1.5' is not a whole number"),
        ("deadline=0", "option deadline=0 must be positive"),
        ("timeout=nan", "must be positive"),
        ("retries=-1", "must be zero or more"),
        ("retries", "option 'retries' needs one value"),
        ("retries=1&retries=2", "option 'retries' needs one value"),
    ],
)
def test_bad_openai_spec_options_are_one_clear_error(query, fragment):
    with pytest.raises(SpecError, match=fragment):
        parse_spec(f"openai:http://x/v1#m?{query}")


def test_an_option_set_in_the_spec_and_by_the_caller_is_refused():
    with pytest.raises(SpecError, match="sets timeout_s, which the caller passes too"):
        load_agent("openai:http://x/v1#m?timeout=5", timeout_s=10)


def test_spec_options_take_effect_against_a_silent_server(fake):
    started = time.monotonic()
    with pytest.raises(BackendError, match="no answer after 1 try: no complete reply within timeout_s=0.2 s"):
        ask(load_agent(f"openai:{fake.base}/silent/v1#m?timeout=0.2&retries=0"))
    assert time.monotonic() - started < 2.5


def test_the_api_key_comes_from_openai_api_key_or_the_variable_the_spec_names(fake, monkeypatch):
    url = f"openai:{fake.base}/echo-key/v1#m"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert ask(load_agent(url)).text == ""  # no key anywhere: no Authorization header
    monkeypatch.setenv("OPENAI_API_KEY", "sk-default")
    assert ask(load_agent(url)).text == "Bearer sk-default"
    monkeypatch.setenv("TEAM_KEY", "sk-team")
    assert ask(load_agent(f"{url}?api_key_env=TEAM_KEY")).text == "Bearer sk-team"
    assert ask(OpenAIAgent(f"{fake.base}/echo-key/v1", "m", api_key="sk-given")).text == "Bearer sk-given"
    with pytest.raises(ValueError, match="the API key variable 'MISSING_KEY' .* is not set"):
        load_agent(f"{url}?api_key_env=MISSING_KEY")


# -- the server ---------------------------------------------------------------------------


class Recorder:
    """An agent that answers "ok" and remembers what reached it."""

    name = "recorder"

    def __init__(self):
        self.seen = []

    def act(self, requests):
        self.seen.extend(requests)
        return [Reply(text="ok") for _ in requests]


@pytest.fixture
def recorder_server():
    agent = Recorder()
    with LoopbackServer(create_app(agent, max_prompt_chars=100, max_body_bytes=4000)) as server:
        server.agent = agent
        yield server


def post(server, body=None, **kw):
    return httpx.post(f"{server.url}/chat/completions", json=body, timeout=10, **kw)


def test_a_prompt_over_the_cap_is_413_and_never_reaches_the_batcher(recorder_server):
    messages = [{"role": "system", "content": "s" * 60}, {"role": "user", "content": "u" * 41}]
    got = post(recorder_server, {"messages": messages})
    assert got.status_code == 413
    assert "101 characters, over this server's cap of 100" in got.json()["error"]["message"]
    assert recorder_server.agent.seen == []
    assert post(recorder_server, {"messages": messages[1:]}).json()["choices"][0]["message"]["content"] == "ok"


def test_the_default_prompt_cap_refuses_a_200000_character_prompt():
    agent = Recorder()
    with LoopbackServer(create_app(agent)) as server:
        got = post(server, {"messages": [{"role": "user", "content": "x" * 200_000}]})
    assert got.status_code == 413 and "cap of 32000" in got.json()["error"]["message"] and agent.seen == []


def test_a_body_over_the_byte_cap_is_413_with_or_without_a_content_length(recorder_server):
    body = json.dumps({"messages": [{"role": "user", "content": "x"}], "pad": "p" * 5000}).encode()
    declared = post(recorder_server, content=body, headers={"content-type": "application/json"})

    def chunked():
        for i in range(0, len(body), 500):
            yield body[i : i + 500]

    streamed = post(recorder_server, content=chunked(), headers={"content-type": "application/json"})
    for got in (declared, streamed):
        assert got.status_code == 413 and "4000 byte cap" in got.json()["error"]["message"]
    assert recorder_server.agent.seen == []


@pytest.mark.parametrize(
    "field,literal",
    [("temperature", "NaN"), ("temperature", "Infinity"), ("top_p", "-Infinity"), ("max_tokens", "1e400"), ("temperature", "3")],
)
def test_bad_numbers_are_422_with_a_json_error(recorder_server, field, literal):
    raw = '{"messages": [{"role": "user", "content": "x"}], "' + field + '": ' + literal + "}"
    got = post(recorder_server, content=raw, headers={"content-type": "application/json"})
    assert got.status_code == 422
    error = got.json()["error"]
    assert error["type"] == "invalid_request_error" and f"invalid request: {field}:" in error["message"]
    assert recorder_server.agent.seen == []


def test_stream_and_several_choices_are_refused_not_ignored(recorder_server):
    base = {"messages": [{"role": "user", "content": "x"}]}
    streamed = post(recorder_server, {**base, "stream": True})
    several = post(recorder_server, {**base, "n": 5})
    assert streamed.status_code == 400 and "stream: true is not supported" in streamed.json()["error"]["message"]
    assert several.status_code == 400 and "n=5 is not supported" in several.json()["error"]["message"]
    assert recorder_server.agent.seen == []
    assert post(recorder_server, {**base, "n": 1, "stream": False}).status_code == 200


# -- the server through the official openai client -----------------------------------------


@pytest.fixture(scope="module")
def tiny_server():
    model, tokenizer = tiny_model()
    agent = CountingAgent(model, tokenizer, name="tiny")
    with LoopbackServer(create_app(agent, max_prompt_chars=1000)) as server:
        server.agent = agent
        server.client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=30)
        yield server


def test_the_openai_client_gets_the_served_text(tiny_server):
    messages = [{"role": "user", "content": "hello there"}]
    got = tiny_server.client.chat.completions.create(model="tiny", messages=messages, temperature=0.0, max_tokens=10)
    local = tiny_server.agent.act([Request(messages=messages, sampling=Sampling(temperature=0.0, max_new_tokens=10))])[0]
    assert got.choices[0].message.content == local.text


def test_the_openai_client_sees_413_for_a_prompt_over_the_cap(tiny_server):
    tiny_server.agent.batch_sizes.clear()
    with pytest.raises(openai.APIStatusError) as caught:
        tiny_server.client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x" * 1001}])
    assert caught.value.status_code == 413 and "over this server's cap of 1000" in caught.value.message
    assert tiny_server.agent.batch_sizes == []


def test_the_openai_client_sees_400_for_stream_and_n(tiny_server):
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.BadRequestError, match="stream: true is not supported"):
        tiny_server.client.chat.completions.create(model="tiny", messages=messages, stream=True)
    with pytest.raises(openai.BadRequestError, match="n=5 is not supported"):
        tiny_server.client.chat.completions.create(model="tiny", messages=messages, n=5)


def test_nan_temperature_is_422_for_the_openai_client_or_refused_by_it(tiny_server):
    messages = [{"role": "user", "content": "x"}]
    try:
        tiny_server.client.chat.completions.create(model="tiny", messages=messages, temperature=float("nan"))
    except openai.UnprocessableEntityError as err:
        assert err.status_code == 422 and "finite number" in err.message
    except ValueError:  # the client would not write NaN as JSON; send it raw instead
        raw = '{"model": "tiny", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}'
        got = httpx.post(f"{tiny_server.url}/chat/completions", content=raw, headers={"content-type": "application/json"})
        assert got.status_code == 422 and "finite number" in got.json()["error"]["message"]
    else:
        pytest.fail("NaN temperature was accepted")


def test_the_openai_client_can_send_a_move_grammar(tiny_server):
    grammar = 'start: "ANSWER: " /[1-3]/'
    got = tiny_server.client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "go"}], max_tokens=20, seed=1,
        extra_body={"structured_outputs": {"grammar": grammar}},
    )
    assert accepts(grammar, got.choices[0].message.content)
