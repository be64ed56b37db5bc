"""`dialogym serve` against adversarial requests: a bad request fails alone, never its
batchmates, and every request is capped in messages, tokens, stop strings and bytes before
it reaches the batcher. Servers run on loopback; every wait is bounded."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import openai
import pytest

from dialogym.agents.base import Reply
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.models import tiny_model
from dialogym.agents.server import create_app
from tests.agents.test_http_backend import LoopbackServer

#: A grammar llguidance compiles but whose language is empty: no reply can ever end.
NEVER_ENDS = 'start: "a" start'


class Echo:
    """Answers "echo <last message>", cut at the request's stop strings the way
    TransformersAgent cuts them, and remembers every request that reached it. Like a
    tokenizer, it fails on text that is not valid Unicode."""

    name = "echo"

    def __init__(self):
        self.seen = []

    def act(self, requests):
        self.seen.extend(requests)
        replies = []
        for request in requests:
            for message in request.messages:
                message["content"].encode("utf-8")  # a lone surrogate raises, as in a tokenizer
            text = "echo " + request.messages[-1]["content"]
            for stop in request.sampling.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text = text[:cut]
            replies.append(Reply(text=text))
        return replies


class Gated(Echo):
    """An :class:`Echo` (or ``inner`` agent) whose first call waits for ``gate``, so a test
    can queue requests behind it into one batch; a batch holding a request ``poisoned``
    calls poisoned raises, as a backend whose batched call dies would."""

    name = "gated"

    def __init__(self, poisoned=lambda request: False, inner=None):
        super().__init__()
        self.poisoned, self.inner = poisoned, inner
        self.entered, self.gate = threading.Event(), threading.Event()
        self.batches = []

    def __getattr__(self, key):  # encode and model of the inner agent, when there is one
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(key)
        return getattr(inner, key)

    def act(self, requests):
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(30), "the test never opened the gate"
        self.batches.append([r.messages[-1]["content"] for r in requests])
        if any(self.poisoned(r) for r in requests):
            raise RuntimeError("poisoned batch")
        return self.inner.act(requests) if self.inner is not None else super().act(requests)


def body(text, **fields):
    return {"messages": [{"role": "user", "content": text}], **fields}


def post(server, payload, timeout=60):
    if isinstance(payload, str):  # raw JSON, e.g. with escapes json.dumps would not write
        return httpx.post(f"{server.url}/chat/completions", content=payload, headers={"content-type": "application/json"},
                          timeout=timeout)
    return httpx.post(f"{server.url}/chat/completions", json=payload, timeout=timeout)


def serving(agent, **caps):
    app = create_app(agent, **caps)
    server = LoopbackServer(app)
    server.app = app
    return server


def one_batch(server, agent, payloads, *, queued):
    """Posts ``payloads`` concurrently while the agent holds its first call, waits until
    ``queued`` of them wait in the batcher's queue, then lets them run as one batch."""
    with ThreadPoolExecutor(len(payloads) + 1) as pool:
        first = pool.submit(post, server, body("gate"))
        assert agent.entered.wait(20)
        futures = [pool.submit(post, server, p) for p in payloads]
        waiting = server.app.state.batcher.queue
        deadline = time.time() + 20
        while waiting.qsize() < queued:
            assert time.time() < deadline, f"only {waiting.qsize()} of {queued} requests were queued"
            time.sleep(0.01)
        agent.gate.set()
        assert first.result().status_code == 200
        return [f.result() for f in futures]


def error_of(response):
    error = response.json()["error"]
    assert set(error) >= {"message", "type"}
    return error


# -- item 4: one bad request fails alone --------------------------------------------------


def test_a_lone_surrogate_is_422_naming_its_field_and_its_ten_batchmates_are_answered():
    agent = Gated()
    with serving(agent) as server:
        good = [body(f"good {i}") for i in range(10)]
        bad = '{"messages": [{"role": "user", "content": "bad \\ud800 text"}]}'
        *answers, refused = one_batch(server, agent, [*good, bad], queued=10)
    assert [a.status_code for a in answers] == [200] * 10
    assert [a.json()["choices"][0]["message"]["content"] for a in answers] == [f"echo good {i}" for i in range(10)]
    assert refused.status_code == 422
    error = error_of(refused)
    assert error["type"] == "invalid_request_error"
    assert "messages.0.content" in error["message"] and "unpaired UTF-16 surrogate" in error["message"]
    assert not any("bad" in r.messages[-1]["content"] for r in agent.seen)


@pytest.mark.parametrize(
    "raw,field",
    [
        ('{"messages": [{"role": "user", "content": "x"}], "stop": ["ok", "\\udc00"]}', "stop.1"),
        ('{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud83d"}]}]}', "messages.0.content.0.text"),
        ('{"messages": [{"role": "user", "content": "x"}], "structured_outputs": {"grammar": "start: \\"\\ud800\\""}}',
         "structured_outputs.grammar"),
    ],
)
def test_a_lone_surrogate_anywhere_is_422_naming_the_field(raw, field):
    agent = Echo()
    with serving(agent) as server:
        refused = post(server, raw)
        paired = post(server, '{"messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}')  # a pair is fine
    assert refused.status_code == 422 and f"{field}: an unpaired UTF-16 surrogate" in error_of(refused)["message"]
    assert paired.status_code == 200 and paired.json()["choices"][0]["message"]["content"] == "echo \U0001f600"
    assert len(agent.seen) == 1


def test_a_failing_batch_is_retried_one_by_one_so_only_the_poisoned_request_fails():
    agent = Gated(poisoned=lambda request: request.messages[-1]["content"] == "poison")
    with serving(agent) as server:
        payloads = [body(f"good {i}") for i in range(5)] + [body("poison")] + [body(f"good {i}") for i in range(5, 10)]
        answers = one_batch(server, agent, payloads, queued=11)
        later = post(server, body("later"))  # the worker lives on
    failed = answers.pop(5)
    assert [a.status_code for a in answers] == [200] * 10
    assert [a.json()["choices"][0]["message"]["content"] for a in answers] == [f"echo good {i}" for i in range(10)]
    assert failed.status_code == 500
    error = error_of(failed)
    assert error["type"] == "server_error" and "RuntimeError: poisoned batch" in error["message"]
    assert later.status_code == 200 and later.json()["choices"][0]["message"]["content"] == "echo later"
    sizes = [len(b) for b in agent.batches]
    assert sizes == [1, 11] + [1] * 11 + [1]  # the gate, the failed batch, each of its requests alone, later


def test_a_grammar_that_does_not_compile_is_422_with_the_compilers_message():
    agent = Echo()
    with serving(agent) as server:
        refused = post(server, body("go", structured_outputs={"grammar": "start: nowhere"}))
    assert refused.status_code == 422
    error = error_of(refused)
    assert error["type"] == "invalid_request_error"
    assert "structured_outputs.grammar" in error["message"] and 'unknown name: "nowhere"' in error["message"]
    assert agent.seen == []


def test_a_grammar_that_never_ends_fails_alone_among_ten_requests_to_the_tiny_model():
    model, tokenizer = tiny_model()
    agent = Gated(inner=TransformersAgent(model, tokenizer, name="tiny"))
    with serving(agent) as server:
        payloads = [body(f"good {i}", max_tokens=4, seed=i) for i in range(10)]
        payloads.append(body("loop", max_tokens=4, structured_outputs={"grammar": NEVER_ENDS}))
        *answers, failed = one_batch(server, agent, payloads, queued=11)
    assert [a.status_code for a in answers] == [200] * 10
    assert failed.status_code == 422
    assert "structured_outputs.grammar: the grammar failed while decoding" in error_of(failed)["message"]
    assert [len(b) for b in agent.batches[:2]] == [1, 11]


# -- item 5: caps on messages, tokens, stop strings ---------------------------------------


def test_more_messages_than_max_messages_is_413_and_never_reaches_the_agent():
    agent = Echo()
    with serving(agent) as server:
        flood = post(server, {"messages": [{"role": "user", "content": ""}] * 20_000})
        over = post(server, {"messages": [{"role": "user", "content": ""}] * 257})
        at_cap = post(server, {"messages": [{"role": "user", "content": ""}] * 256})
    for refused, count in ((flood, 20_000), (over, 257)):
        assert refused.status_code == 413
        assert f"{count} messages, over this server's cap of 256 (max_messages)" in error_of(refused)["message"]
    assert at_cap.status_code == 200 and len(agent.seen) == 1


class Tokenizing(Echo):
    """An Echo with a tokenizer (one token per UTF-8 byte, plus 3 for the template) and a
    model config, like TransformersAgent; ``slow`` prompts take 2.5 s to count."""

    def __init__(self, context):
        super().__init__()
        self.model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=context))
        self.encoded_on = []

    def encode(self, messages):
        self.encoded_on.append(threading.current_thread().name)
        if messages[-1]["content"] == "slow":
            time.sleep(2.5)
        return list(range(3 + sum(len(m["content"].encode()) for m in messages)))


def test_prompt_tokens_plus_max_tokens_over_the_models_context_is_413():
    agent = Tokenizing(context=100)
    with serving(agent) as server:
        fits = post(server, body("x" * 60, max_tokens=37))  # 63 + 37 = 100
        over = post(server, body("x" * 60, max_tokens=38))
        wide = post(server, body("\U0001f600" * 30, max_tokens=1))  # 30 characters, 123 tokens
    assert fits.status_code == 200
    assert over.status_code == 413
    assert ("63 tokens and max_tokens is 38: together over the model's context of 100 tokens (max_context_tokens)"
            in error_of(over)["message"])
    assert wide.status_code == 413 and "123 tokens" in error_of(wide)["message"]
    assert len(agent.seen) == 1
    with serving(Tokenizing(context=100), max_context_tokens=50) as server:  # the cap can be set lower
        assert "context of 50 tokens" in error_of(post(server, body("x" * 60, max_tokens=1)))["message"]


def test_the_tiny_models_context_refuses_31900_four_byte_characters_before_the_batcher():
    class Recording(TransformersAgent):
        calls = 0

        def act(self, requests):
            Recording.calls += 1
            return [Reply(text="generated") for _ in requests]

    model, tokenizer = tiny_model()
    agent = Recording(model, tokenizer, name="tiny")
    with serving(agent) as server:
        started = time.perf_counter()
        refused = post(server, body("\U0001f600" * 31_900))  # under the 32,000-character cap
        took = time.perf_counter() - started
    assert refused.status_code == 413
    assert "over the model's context of 4096 tokens (max_context_tokens)" in error_of(refused)["message"]
    assert Recording.calls == 0 and took < 10


def test_counting_a_slow_prompts_tokens_holds_up_neither_the_batcher_nor_other_requests():
    agent = Tokenizing(context=1000)
    with serving(agent) as server, ThreadPoolExecutor(2) as pool:
        slow = pool.submit(post, server, body("slow"))
        time.sleep(0.2)
        started = time.perf_counter()
        fast = post(server, body("fast"))
        fast_took = time.perf_counter() - started
        assert not slow.done()
        assert fast.status_code == 200 and slow.result().status_code == 200
    assert fast_took < 1.5
    assert len(agent.encoded_on) == 2 and "dialogym-batcher" not in agent.encoded_on


def test_stop_strings_are_capped_in_number_and_length():
    agent = Echo()
    with serving(agent) as server:
        many = post(server, body("x", stop=["a", "b", "c", "d", "e"]))
        long = post(server, body("x", stop=["s" * 65]))
        huge = post(server, body("x", stop="s" * 900_000))
        at_caps = post(server, body("x", stop=["a" * 64, "b", "c", "d"]))
    assert many.status_code == 422 and "5 stop strings, over this server's cap of 4 (max_stop)" in error_of(many)["message"]
    for refused, length in ((long, 65), (huge, 900_000)):
        assert refused.status_code == 422
        assert f"a stop string of {length} characters, over this server's cap of 64 per string (max_stop_chars)" \
            in error_of(refused)["message"]
    assert at_caps.status_code == 200 and len(agent.seen) == 1


# -- item 9: OpenAI forms ------------------------------------------------------------------


def test_an_empty_stop_string_is_ignored_not_a_cut_to_nothing():
    agent = Echo()
    with serving(agent) as server:
        empty = post(server, body("hello world", stop=""))
        mixed = post(server, body("hello world", stop=["", "wor"]))
    assert empty.status_code == 200 and empty.json()["choices"][0]["message"]["content"] == "echo hello world"
    assert mixed.status_code == 200 and mixed.json()["choices"][0]["message"]["content"] == "echo hello "
    assert [r.sampling.stop for r in agent.seen] == [(), ("wor",)]


def test_list_content_from_the_openai_client_is_joined_and_other_parts_are_422_naming_the_type():
    agent = Echo()
    with serving(agent) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=30)
        parts = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
        got = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": parts}])
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            client.chat.completions.create(model="echo", messages=[{"role": "user", "content": [
                {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}])
    assert got.choices[0].message.content == "echo first\nsecond"
    assert agent.seen[0].messages == [{"role": "user", "content": "first\nsecond"}]
    assert caught.value.status_code == 422
    assert "messages.0.content.1: content parts of type 'image_url' are not supported" in caught.value.message
    assert len(agent.seen) == 1
