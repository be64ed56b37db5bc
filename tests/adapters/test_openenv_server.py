"""Every registered game served by OpenEnv's own server, checked with OpenEnv's own client.

Skipped where openenv-core is not installed; CI installs it (the ``dev`` extra includes
``dialogym[openenv]``). Servers run on loopback; every wait is bounded.
"""

import asyncio
import threading
import time

import httpx
import pytest

pytest.importorskip("openenv")

import dialogym  # noqa: E402
from dialogym.adapters.openenv import DialogueAction, DialogueEnvClient, create_app  # noqa: E402
from dialogym.adapters.openenv.shared_agent import SharedAgent  # noqa: E402
from dialogym.agents.base import Reply  # noqa: E402
from dialogym.agents.gym_env import DialogueGymEnv  # noqa: E402
from dialogym.envs import generate_instance_set, spec  # noqa: E402
from dialogym.envs.instances import episode_rng, instance_set_seed  # noqa: E402
from tests.agents.test_http_backend import LoopbackServer  # noqa: E402
from tests.envs.test_instances_golden import PINS  # noqa: E402

BUILTIN = [game_id for game_id in dialogym.registered() if game_id.startswith("dialogym/")]
SESSIONS = 64


@pytest.fixture(scope="module")
def server():
    with LoopbackServer(create_app(BUILTIN, opponents="scripted", max_sessions=SESSIONS + 8)) as running:
        running.base = running.url.removesuffix("/v1")
        yield running


def scripted_reply(game_id, seat, view, seed, step):
    """The game's default scripted player in the client's seat, its randomness from (seed, step)."""
    players = spec(game_id).players
    return players[next(iter(players))][seat](view, episode_rng(seed, step))


def played_in_process(game_id, seat, seed):
    """The same episode through the Gymnasium env: the client's replies from the same policy."""
    env = DialogueGymEnv(game_id, seat=seat, opponents="scripted")
    _, info = env.reset(seed=seed)
    step, done = 0, env.match.done
    while not done:
        _, _, done, _, info = env.step(scripted_reply(game_id, seat, info["view"], seed, step))
        step += 1
    return dict(env.match.outcome.rewards), env.match.instance.id


async def play_session(base, game_id, seat, seed):
    async with DialogueEnvClient(base_url=base, message_timeout_s=120) as env:
        result = await env.reset(game=game_id, seat=seat, seed=seed)
        step = 0
        while not result.done:
            observation = result.observation
            assert observation.text and observation.messages[-1]["content"] == observation.text
            reply = scripted_reply(game_id, seat, observation.view, seed, step)
            result = await env.step(DialogueAction(text=reply))
            step += 1
        return result.observation


def sessions_on(app, game_id, seat, seeds, timeout=300):
    """The last observations of sessions played at once, one per seed, on a loopback server of ``app``."""
    with LoopbackServer(app) as running:
        base = running.url.removesuffix("/v1")

        async def sessions():
            return await asyncio.gather(*(play_session(base, game_id, seat, seed) for seed in seeds))

        return asyncio.run(asyncio.wait_for(sessions(), timeout=timeout))


@pytest.mark.parametrize("game_id", BUILTIN)
def test_64_concurrent_sessions_end_with_the_rewards_of_the_same_seeds_played_in_process(server, game_id):
    roles = spec(game_id).game_cls.roles

    async def all_sessions():
        return await asyncio.gather(*(play_session(server.base, game_id, roles[i % len(roles)], 1000 + i)
                                      for i in range(SESSIONS)))

    observations = asyncio.run(asyncio.wait_for(all_sessions(), timeout=500))
    for i, observation in enumerate(observations):
        rewards, instance_id = played_in_process(game_id, roles[i % len(roles)], 1000 + i)
        assert observation.done and observation.status in ("completed", "aborted")
        assert observation.rewards == rewards and observation.instance_id == instance_id
        assert observation.reward == rewards[observation.seat]
        assert {"replies", "invalid_replies"} <= set(observation.metrics)


@pytest.mark.parametrize("game_id, level", sorted(PINS))
def test_reset_draws_the_pinned_golden_instances(server, game_id, level):
    pinned = generate_instance_set(game_id, 5, seed=0, level=level, split="test")
    assert (pinned.version, pinned.fingerprint) == PINS[game_id, level]
    expected = [spec(game_id).game().instance_cls.model_validate(item).id for item in pinned.instances]

    async def served_ids():
        ids, index = [], 0
        async with DialogueEnvClient(base_url=server.base) as env:
            while len(ids) < 5:  # as generate_instance_set: a repeated instance is skipped
                seed = instance_set_seed(0, index)
                result = await env.reset(game=game_id, seed=seed, split="test", level=level)
                local = dialogym.make(game_id, split="test", level=level)
                local.reset(seed=seed)
                assert result.observation.instance_id == local.match.instance.id
                if result.observation.instance_id not in ids:
                    ids.append(result.observation.instance_id)
                index += 1
        return ids

    assert asyncio.run(served_ids()) == expected


def test_an_http_client_plays_an_episode_by_its_id(server):
    game_id, seed = "dialogym/Reference-v0", 11
    with httpx.Client(base_url=server.base, timeout=60) as http:
        first = http.post("/reset", json={"game": game_id, "seed": seed, "seat": "listener"}).json()
        episode_id = first["observation"]["episode_id"]
        observation, done, step = first["observation"], first["done"], 0
        while not done:
            reply = scripted_reply(game_id, "listener", observation["view"], seed, step)
            body = http.post("/step", json={"action": {"text": reply}, "episode_id": episode_id}).json()
            observation, done, step = body["observation"], body["done"], step + 1
        assert observation["rewards"] == played_in_process(game_id, "listener", seed)[0]
        again = http.post("/step", json={"action": {"text": "GUESS: 1"}, "episode_id": episode_id})
        assert again.status_code == 409 and "is over" in again.json()["detail"]


BAD_REQUESTS = [
    ("/reset", {"game": "dialogym/Nonexistent-v0"}, 404, "serves no game"),
    ("/reset", {"game": "dialogym/Reference-v0", "level": "impossible"}, 422, "unknown level"),
    ("/reset", {"seed": -1}, 422, "seed"),
    ("/reset", {"levle": "easy"}, 422, "unknown reset option"),
    ("/step", {"action": {"text": "hi"}, "episode_id": "no-such-episode"}, 404, "no episode 'no-such-episode'"),
    ("/step", {"action": {"txt": "hi"}}, 422, "invalid action"),
    ("/step", {"action": "just a string"}, 422, "action"),
    ("/step", {"action": {"text": "x" * 9000}}, 422, "at most 8192 characters"),
    ("/step", {"action": {"text": "hi"}}, 404, "reset first"),
]


@pytest.mark.parametrize("path, body, status, message", BAD_REQUESTS)
def test_bad_input_gets_a_4xx_with_a_message_and_the_server_stays_up(server, path, body, status, message):
    with httpx.Client(base_url=server.base, timeout=30) as http:
        response = http.post(path, json=body)
        assert response.status_code == status, response.text
        assert message in response.json()["detail"] and "Traceback" not in response.text
        assert http.get("/health").json()["status"] == "healthy"
        assert http.post("/reset", json={"seed": 1}).status_code == 200


def test_an_oversize_body_is_refused_before_it_is_read(server):
    with httpx.Client(base_url=server.base, timeout=30) as http:
        response = http.post("/step", content=b"{" + b" " * (1024 * 1024) + b"}",
                             headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert http.get("/health").status_code == 200


def test_over_a_websocket_a_refused_request_is_an_error_and_the_session_goes_on(server):
    async def session():
        async with DialogueEnvClient(base_url=server.base) as env:
            with pytest.raises(RuntimeError, match="serves no game 'dialogym/Nope-v0'"):
                await env.reset(game="dialogym/Nope-v0")
            with pytest.raises(RuntimeError, match="reset first"):
                await env.step(DialogueAction(text="hello"))
            result = await env.reset(game="dialogym/Reference-v0", seed=3)
            assert result.observation.seat == "speaker" and not result.done
            assert result.observation.grammar and result.observation.grammar.startswith("start:")
            state = await env.state()
            assert state.game == "dialogym/Reference-v0" and state.instance_id == result.observation.instance_id

    asyncio.run(asyncio.wait_for(session(), timeout=60))


def test_sessions_are_independent(server):
    """Two sessions on the same game and seed, one answering badly: each keeps its own match."""
    async def both():
        async with DialogueEnvClient(base_url=server.base) as good, DialogueEnvClient(base_url=server.base) as bad:
            a = await good.reset(game="dialogym/Reference-v0", seed=5)
            b = await bad.reset(game="dialogym/Reference-v0", seed=5)
            assert a.observation.text == b.observation.text and a.observation.episode_id != b.observation.episode_id
            b = await bad.step(DialogueAction(text="nonsense"))
            assert b.observation.error and b.observation.retries_left == 1
            a = await good.step(DialogueAction(text=scripted_reply("dialogym/Reference-v0", "speaker",
                                                                   a.observation.view, 5, 0)))
            assert a.observation.error is None and a.done

    asyncio.run(asyncio.wait_for(both(), timeout=60))


# -- server-side model opponents -------------------------------------------------------------
class Recorder:
    """A stand-in model: answers every request with the same (wrong) move, counting batches.
    Its first call holds until several sessions' requests wait behind it (bounded), as a
    model's call would while the sessions keep stepping."""

    name = "recorder"
    guided = False

    def __init__(self):
        self.batches = []
        self.shared = None

    def act(self, requests):
        if not self.batches:
            deadline = time.monotonic() + 20
            while self.shared.waiting < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
        self.batches.append(len(requests))
        return [Reply(text="GUESS: 1") for _ in requests]


def test_a_model_opponent_answers_concurrent_sessions_in_batches():
    recorder = Recorder()
    app = create_app(["dialogym/Reference-v0"], seat="speaker", opponents=recorder, max_sessions=40)
    recorder.shared = app.state.host.opponents
    observations = sessions_on(app, "dialogym/Reference-v0", "speaker", range(32))
    assert all(observation.done for observation in observations)
    assert sum(recorder.batches) >= 32 and max(recorder.batches) > 1  # calls of several sessions shared a batch


def test_a_shared_agent_gives_each_thread_its_own_replies_and_its_own_errors():
    class Echo:
        name, guided = "echo", False

        def act(self, requests):
            if any(request.seat == "boom" for request in requests):
                raise RuntimeError("boom")
            return [Reply(text=request.seat) for request in requests]

    from dialogym.agents.base import Request

    shared = SharedAgent(Echo())
    results, errors = {}, {}
    barrier = threading.Barrier(8)

    def call(i):
        barrier.wait()
        try:
            results[i] = [reply.text for reply in shared.act([Request(messages=[], seat=f"s{i}-{j}") for j in range(3)])]
        except RuntimeError as err:
            errors[i] = str(err)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {i: [f"s{i}-{j}" for j in range(3)] for i in range(8)} and not errors
    assert shared.batch_sizes and sum(shared.batch_sizes) == 24
    with pytest.raises(RuntimeError, match="boom"):
        shared.act([Request(messages=[], seat="boom")])
    assert shared.act([Request(messages=[], seat="after")])[0].text == "after"  # the gate is free again


# -- the command line --------------------------------------------------------------------------
def test_env_serve_refuses_an_unknown_game_and_a_bad_spec_in_one_line():
    from typer.testing import CliRunner

    from dialogym.cli import app

    for args, message in ((["env-serve", "dialogym/Nope-v0"], "no game registered"),
                          (["env-serve", "dialogym/Reference-v0", "--opponents", "nonsense:x"], "error")):
        result = CliRunner().invoke(app, args)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_a_model_spec_plays_the_other_seats_server_side():
    app = create_app(["dialogym/Reference-v0"], seat="listener", opponents="tiny", max_sessions=8)
    observations = sessions_on(app, "dialogym/Reference-v0", "listener", range(4))
    # the random-weight speaker writes no valid clue: it forfeits, server-side, before the listener speaks
    assert all(o.done and o.status == "aborted" and o.rewards["speaker"] == -1.0 for o in observations)


# -- training against the server from TRL ------------------------------------------------------
def test_trls_grpo_trainer_takes_a_step_against_the_server(tmp_path):
    pytest.importorskip("trl")
    from dialogym.adapters.openenv.trl_example import train

    with LoopbackServer(create_app(["dialogym/Reference-v0"], seat="listener", max_sessions=8)) as running:
        trainer = train(running.url.removesuffix("/v1"), "dialogym/Reference-v0", model="tiny", steps=1,
                        output_dir=str(tmp_path))
    assert trainer.state.global_step == 1
    assert "reward" in trainer.state.log_history[0]


def test_env_serve_serves_a_game_that_openenvs_client_plays(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "dialogym", "env-serve", "reference", "--seat", "listener",
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        assert "dialogym/Reference-v0" in httpx.get(f"{base}/metadata", timeout=10).json()["description"]
        observation = asyncio.run(asyncio.wait_for(play_session(base, "dialogym/Reference-v0", "listener", 4), 60))
        assert observation.done and observation.rewards == played_in_process("dialogym/Reference-v0", "listener", 4)[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
