"""Remote agents (models behind an API): each request goes out on its own, its reply reaches
its episode as it arrives, the engine keeps up to the run's bound out, and the HTTP client
keeps one pool of connections and lowers its bound on a 429 instead of failing the run."""

import asyncio
import threading
import time
import zlib
from concurrent.futures import Future

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from dialogym.agents.base import RemoteAgent, Request
from dialogym.agents.openai_http import InFlightBound, OpenAIAgent
from dialogym.agents.rollout import REMOTE_BOUND, EpisodeSpec, RolloutEngine
from dialogym.agents.scripted import ScriptedAgent
from dialogym.agents.specs import SpecError, load_agent, parse_spec
from dialogym.benchmarks.perf.remote import Latency, LatencyServer
from dialogym.cli import app
from dialogym.envs import reply_seed
from tests.agents.test_http_backend import LoopbackServer
from tests.agents.test_http_hardening import completion


class RemoteScripted:
    """A remote agent answering as the scripted players do, each request in a thread of its
    own after ``delay(request)`` seconds; ``hold(request)`` requests wait until :meth:`release`.
    Counts the requests it has out and the most it had."""

    guided = False

    def __init__(self, name="remote", *, delay=lambda request: 0.0, hold=lambda request: False, concurrency=None):
        self.name, self.delay, self.hold, self.concurrency = name, delay, hold, concurrency
        self.scripted = ScriptedAgent()
        self.lock, self.released = threading.Lock(), threading.Event()
        self.out = self.peak = 0

    def act(self, requests):  # a batch is answered when its last request is
        return [future.result() for future in [self.send(request) for request in requests]]

    def send(self, request):
        future, delay, held = Future(), self.delay(request), self.hold(request)
        with self.lock:
            self.out += 1
            self.peak = max(self.peak, self.out)

        def answer():
            time.sleep(delay)
            if held:
                self.released.wait(30)  # a safety net only: the test releases it long before
            reply = self.scripted.act([request])[0]
            with self.lock:
                self.out -= 1
            future.set_result(reply)

        threading.Thread(target=answer, daemon=True).start()
        return future

    def release(self):
        self.released.set()


def transcript(episodes):
    return [([(t.seat, t.raw, t.error) for t in e.turns], e.rewards) for e in episodes]


def negotiation_specs(n, seats):
    return [EpisodeSpec(game="dialogym/Negotiation-v0", seed=i, seats=seats) for i in range(n)]


def pennies_specs(n, seats):
    from tests.envs.test_toy_game import MatchingPennies  # noqa: F401  (registers dialogym/Pennies-v0)

    return [EpisodeSpec(game="dialogym/Pennies-v0", seed=i, seats=seats, level="long") for i in range(n)]


def test_a_remote_agent_is_recognised_by_its_send_method():
    assert isinstance(RemoteScripted(), RemoteAgent) and isinstance(OpenAIAgent("http://x/v1", "m"), RemoteAgent)
    assert not isinstance(ScriptedAgent(), RemoteAgent)


def test_a_slow_request_holds_up_only_its_own_episode():
    specs = negotiation_specs(6, {"alice": "r", "bob": "r"})
    slow = reply_seed(0, 0, 0, 0)  # the first reply of episode 0
    finished = []
    agent = RemoteScripted(hold=lambda request: request.seed == slow)

    def ended(episode):
        finished.append(episode.seed)
        if len(finished) == len(specs) - 1:
            agent.release()  # every other episode is over: now the slow reply comes

    episodes = RolloutEngine({"r": agent}).run(specs, on_episode=ended)
    assert finished[-1] == 0 and sorted(finished) == list(range(6))
    assert all(e.played for e in episodes)


def test_episodes_do_not_depend_on_the_order_replies_arrive():
    seats = {"alice": "r", "bob": "r"}
    specs = negotiation_specs(5, seats) + pennies_specs(3, {"match": "r", "mismatch": "r"})

    def jitter(salt):
        return lambda request: (zlib.crc32(f"{salt}{request.seed}".encode()) % 5) * 0.002

    batched = transcript(RolloutEngine({"r": ScriptedAgent()}).run(specs))
    for engine in (
        RolloutEngine({"r": RemoteScripted(delay=jitter("a"))}),
        RolloutEngine({"r": RemoteScripted(delay=jitter("b"))}),
        RolloutEngine({"r": RemoteScripted(delay=jitter("c"))}, max_concurrent=2),
        RolloutEngine({"r": RemoteScripted(delay=jitter("d"))}, lockstep=True),
    ):
        assert transcript(engine.run(specs)) == batched


class Gated(RemoteScripted):
    """Holds every reply until ``expected`` requests are out (or a safety timeout passed)."""

    def __init__(self, expected, **kw):
        super().__init__(hold=lambda request: True, **kw)
        self.expected = expected

    def send(self, request):
        future = super().send(request)
        with self.lock:
            if self.out >= self.expected:
                self.release()
        return future


def test_a_remote_agent_has_at_most_the_engines_bound_out_unless_it_sets_its_own():
    specs = pennies_specs(4, {"match": "r", "mismatch": "r"})  # two requests per episode at once
    engine_bound = Gated(3)
    RolloutEngine({"r": engine_bound}, max_concurrent=3).run(specs)
    assert engine_bound.peak == 3  # 3 live episodes could have 6 out; the bound is 3

    own_bound = Gated(5, concurrency=5)
    RolloutEngine({"r": own_bound}, max_concurrent=3).run(specs)
    assert own_bound.peak == 5

    unbounded = Gated(REMOTE_BOUND)  # neither sets a bound: 40 episodes could have 80 out
    RolloutEngine({"r": unbounded}).run(pennies_specs(40, {"match": "r", "mismatch": "r"}))
    assert unbounded.peak == REMOTE_BOUND


def test_the_bound_counts_the_requests_really_out():
    # Half the remote agent's requests come at once, the other half after the scripted
    # speakers' batch: the first half must not use up the places of the second.
    first = [EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats={"speaker": "r", "listener": "s"}) for i in range(8)]
    second = [EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats={"speaker": "s", "listener": "r"}) for i in range(8, 16)]
    remote = Gated(16)
    RolloutEngine({"r": remote, "s": ScriptedAgent()}, max_concurrent=16).run(first + second)
    assert remote.peak == 16


def test_an_error_of_a_remote_request_ends_the_run():
    class Failing(RemoteScripted):
        def send(self, request):
            future = Future()
            future.set_exception(RuntimeError("server down"))
            return future

    with pytest.raises(RuntimeError, match="server down"):
        RolloutEngine({"r": Failing()}).run(negotiation_specs(2, {"alice": "r", "bob": "r"}))


# -- the HTTP client -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def latency_server():
    with LatencyServer(Latency.parse("fixed:0.2")) as server:
        yield server


def test_the_http_agent_keeps_one_connection_between_requests(latency_server):
    latency_server.reset()
    agent = OpenAIAgent(latency_server.url, "m")
    for text in ("one", "two", "three"):
        agent.act([Request(messages=[{"role": "user", "content": text}])])
    assert latency_server.load()["connections"] == 1


def test_the_http_agent_opens_no_more_connections_than_requests_out_and_reuses_them(latency_server):
    latency_server.reset()
    agent = OpenAIAgent(latency_server.url, "m", concurrency=3)
    for _ in range(3):
        agent.act([Request(messages=[{"role": "user", "content": str(i)}]) for i in range(6)])
    load = latency_server.load()
    assert load["requests"] == 18 and load["peak_in_flight"] == 3 and load["connections"] == 3


@pytest.mark.parametrize("closer", ["the loop", "another thread"])
def test_a_transport_out_when_the_pool_closes_is_not_handed_out_again(closer):
    from dialogym.agents.openai_http import _Pool, client_loop

    async def scenario():
        pool = _Pool("http://127.0.0.1:1", 5.0, {})
        async with pool.transport() as first:
            # the agent closed while a request is out: at once on the loop, else queued to it
            pool.close() if closer == "the loop" else await asyncio.to_thread(pool.close)
            await asyncio.sleep(0)
        async with pool.transport() as second:
            pass
        return first, second, pool

    first, second, pool = asyncio.run_coroutine_threadsafe(scenario(), client_loop()).result(timeout=10)
    assert second is not first and pool.idle == [second] and pool.transports == [second]


@pytest.mark.parametrize("query,peak", [("", 4), ("?concurrency=2", 2)])
def test_the_http_agents_requests_out_follow_the_runs_concurrency_unless_the_spec_sets_it(latency_server, tmp_path, query, peak):
    latency_server.reset()
    args = ["play", "reference", "--model", f"openai:{latency_server.url}#m{query}", "--episodes", "8",
            "--concurrency", "4", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    load = latency_server.load()
    assert load["requests"] == 16 and load["peak_in_flight"] == peak


def test_the_concurrency_option_of_an_openai_spec():
    assert dict(parse_spec("openai:http://x/v1#m?concurrency=8").options) == {"concurrency": 8}
    assert load_agent("openai:http://x/v1#m?concurrency=8").concurrency == 8
    assert load_agent("openai:http://x/v1#m").concurrency is None  # the run's bound
    with pytest.raises(SpecError, match="option concurrency=0 must be 1 or more"):
        parse_spec("openai:http://x/v1#m?concurrency=0")


def rate_limited_app(capacity):
    """Answers 429 to a request that finds ``capacity`` requests already in its hands."""
    api = FastAPI()
    api.state.out = api.state.refused = api.state.peak_served = 0

    @api.post("/v1/chat/completions")
    async def completions():
        if api.state.out >= capacity:
            api.state.refused += 1
            return JSONResponse({"error": {"message": "rate limit reached"}}, status_code=429)
        api.state.out += 1
        api.state.peak_served = max(api.state.peak_served, api.state.out)
        await asyncio.sleep(0.05)
        api.state.out -= 1
        return completion("ok")

    return api


def test_a_429_lowers_the_in_flight_bound_and_the_requests_still_succeed():
    api = rate_limited_app(capacity=3)
    with LoopbackServer(api) as server:
        agent = OpenAIAgent(server.url, "m", max_retries=0, backoff_s=0.01)
        requests = [Request(messages=[{"role": "user", "content": str(i)}]) for i in range(24)]
        replies = agent.act(requests)
    assert [r.text for r in replies] == ["ok"] * 24
    assert api.state.refused > 0  # the server did refuse some, and no retry was used up
    assert agent.in_flight_bound is not None and agent.in_flight_bound < 24


def test_a_429_to_a_request_sent_at_a_bound_of_one_is_a_failed_try():
    from dialogym.agents.openai_http import BackendError

    api = rate_limited_app(capacity=0)
    with LoopbackServer(api) as server, pytest.raises(BackendError, match="HTTP 429: rate limit reached"):
        OpenAIAgent(server.url, "m", max_retries=1, backoff_s=0.01, concurrency=1).act([Request(messages=[])])
    assert api.state.refused == 2  # the first try and one retry


def test_the_in_flight_bound_halves_once_a_round_on_429_and_grows_back_about_one_a_round():
    async def scenario():
        bound = InFlightBound(None)
        holds = [bound.place() for _ in range(8)]
        places = [await hold.__aenter__() for hold in holds]
        assert bound.limit is None and bound.out == 8
        assert places[0].throttled() and bound.limit == 4  # half of the 8 out
        assert places[1].throttled() and bound.limit == 4  # the same round: no second cut
        for hold in holds:
            await hold.__aexit__(None, None, None)
        assert bound.limit == 5  # six replies at a bound of 4 to 5.3: about one a round

        waiting = [bound.place() for _ in range(6)]
        taken = [await hold.__aenter__() for hold in waiting[:5]]
        late = asyncio.create_task(waiting[5].__aenter__())
        await asyncio.sleep(0.01)
        assert not late.done()  # the sixth waits for a place
        assert taken[0].throttled() and bound.limit == 2  # a new round: half of the 5 out
        for hold in waiting[:5]:
            await hold.__aexit__(None, None, None)
        alone = await late
        assert alone.limit == 3 and alone.throttled() and bound.limit == 1  # free: sent at 3 (grown back from 2)
        await waiting[5].__aexit__(None, None, None)
        last = bound.place()
        single = await last.__aenter__()
        assert not single.throttled()  # sent at a bound of 1: this 429 counts as a failed try
        await last.__aexit__(None, None, None)

    asyncio.run(scenario())


def test_the_in_flight_bound_never_grows_past_the_agents_concurrency():
    async def scenario():
        bound = InFlightBound(3)
        for _ in range(20):
            hold = bound.place()
            await hold.__aenter__()
            await hold.__aexit__(None, None, None)
        return bound.limit

    assert asyncio.run(scenario()) == 3
