"""A model server that fails mid-run: `dialogym bench` and `play` end with one line naming the
server and its error, the episodes finished before it are in episodes.jsonl, and the same
command resumes once the server is back. Fake servers run on loopback."""

import asyncio
import re
import socket
import threading

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from typer.testing import CliRunner

from dialogym.cli import app
from dialogym.envs import read_episodes
from tests.agents.test_http_backend import LoopbackServer
from tests.agents.test_http_hardening import completion

#: A reply both seats of the reference game accept: the speaker reads its first line, the listener the ANSWER line.
MOVE = "CLUE: the red one\nANSWER: 1"
FAILURES = {
    "http-500": lambda: JSONResponse({"error": {"message": "the GPU fell over"}}, status_code=500),
    "http-429": lambda: JSONResponse({"error": {"message": "rate limit reached"}}, status_code=429),
    "not-json": lambda: Response(b"{not json", media_type="application/json"),
    "no-choices": lambda: JSONResponse({"id": "x", "object": "chat.completion"}),
    "html": lambda: HTMLResponse("<html>\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>", status_code=502),
    "not-found": lambda: JSONResponse({"detail": "Not Found"}, status_code=404),
}


def failing_app():
    """Answers ``app.state.good`` requests with MOVE, then fails in the way its path names
    (after a short wait, so replies to other seats always come back first)."""
    app = FastAPI()
    app.state.good = 0

    @app.post("/{failure}/v1/chat/completions")
    async def chat(failure: str):
        if app.state.good > 0:
            app.state.good -= 1
            return completion(MOVE)
        await asyncio.sleep(0.3)
        return FAILURES[failure]()

    return app


@pytest.fixture(scope="module")
def server():
    app = failing_app()
    with LoopbackServer(app) as running:
        running.app = app
        running.base = running.url.removesuffix("/v1")
        yield running


class ResettingServer:
    """Accepts connections on loopback and resets each at once (RST, not a clean close)."""

    def __enter__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        return self

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def bench(out, *models, episodes=4):
    args = ["bench", "--games", "reference", "--models", ",".join(models), "--episodes", str(episodes), "--out", str(out)]
    return CliRunner().invoke(app, args)


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failing_server_ends_bench_with_one_line_naming_the_server_and_the_error(server, failure, tmp_path):
    url = f"{server.base}/{failure}/v1"
    server.app.state.good = 0
    result = bench(tmp_path, f"openai:{url}#m?retries=0")
    expected = {
        "http-500": "HTTP 500: the GPU fell over", "http-429": "HTTP 429: rate limit reached",
        "not-json": "malformed completion", "no-choices": "malformed completion (KeyError: 'choices')",
        "html": "HTTP 502: <html> <body> <h1>502 Bad Gateway</h1>", "not-found": "HTTP 404: Not Found",
    }[failure]
    assert_one_line_error(result, f"{url}/chat/completions", expected, "0 of 4 episodes are in", "rerun the same command")


def test_a_connection_reset_ends_bench_with_one_line(tmp_path):
    with ResettingServer() as resetting:
        result = bench(tmp_path, f"openai:{resetting.url}#m?retries=1")
    assert_one_line_error(result, f"{resetting.url}/chat/completions: no answer after 2 tries")


def test_episodes_finished_before_the_failure_are_kept_and_the_same_command_resumes(server, tmp_path):
    model = f"openai:{server.base}/http-500/v1#m?retries=0"
    server.app.state.good = 4  # four good answers, then HTTP 500
    result = bench(tmp_path, model, "scripted")  # self-play of each model, 4 episodes each, all 8 at once
    # The 4 scripted episodes never call the server. Each of the model's needs two answers (clue,
    # then guess): when its 4 clues take the 4 good answers, none of its episodes finish (4 in);
    # when one listener's request overtakes another episode's clue, one does (5 in; seen about
    # once in 12 runs under load). The error names how many are in, and exactly those are kept.
    assert_one_line_error(result, "HTTP 500", " of 8 episodes are in")
    done = int(re.search(r"(\d+) of 8 episodes are in", result.output).group(1))
    kept = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert 0 < done < 8 and len(kept) == done

    server.app.state.good = 1000  # the server is back
    again = bench(tmp_path, model, "scripted")
    assert again.exit_code == 0, again.output
    assert f"{done} of 8 episodes were already done; played {8 - done}" in again.output
    episodes = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert len(episodes) == len({e.id for e in episodes}) == 8


def test_play_with_a_failing_server_ends_with_one_line_and_resumes(server, tmp_path):
    model = f"openai:{server.base}/http-500/v1#m?retries=0"
    server.app.state.good = 0
    args = ["play", "reference", "--model", model, "--episodes", "2", "--out", str(tmp_path)]
    assert_one_line_error(CliRunner().invoke(app, args), "HTTP 500: the GPU fell over", "0 of 2 episodes are in")
    server.app.state.good = 1000
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len(list(read_episodes(tmp_path / "episodes.jsonl"))) == 2
