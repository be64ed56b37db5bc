"""What a server sends back is checked before it is trusted: text that is not valid Unicode
is stored repaired (one bad reply never costs a run), a guided reply that breaks its grammar
exposes a server that ignores grammars, and a null reply says what the server did."""

import json

import pytest
from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.responses import Response
from typer.testing import CliRunner

from dialogym.agents.base import Request, Sampling
from dialogym.agents.openai_http import BackendError, GrammarIgnored, OpenAIAgent
from dialogym.cli import app
from dialogym.envs import new_match, read_episodes
from dialogym.envs.episode import Episode, EpisodeWriter
from dialogym.envs.text import storable
from tests.agents.test_http_backend import LoopbackServer
from tests.cli.test_backend_failures import MOVE, assert_one_line_error

ANSWER = 'start: "ANSWER: " /[1-3]/'


def raw_completion(content_json: str, finish: str = "stop", **message) -> Response:
    """A completion whose content is written as raw JSON (so escapes such as "\\ud800" stay)."""
    extra = "".join(f', "{k}": {json.dumps(v)}' for k, v in message.items())
    body = (
        f'{{"choices": [{{"finish_reason": "{finish}", "message": {{"role": "assistant", "content": {content_json}{extra}}}}}]}}'
    )
    return Response(body.encode(), media_type="application/json")


def server_app():
    """Paths: /surrogate answers MOVE with a lone surrogate in it; /free ignores grammars;
    /cut answers a valid start cut at the token cap; /null sends no content."""
    api = FastAPI()
    api.state.seen = []

    @api.post("/{kind}/v1/chat/completions")
    async def chat(kind: str, request: HTTPRequest):
        body = await request.json()
        api.state.seen.append(body)
        if kind == "surrogate":
            return raw_completion(json.dumps(MOVE).replace("red", "red\\ud800"))
        if kind == "free":
            return raw_completion(json.dumps("I think it is the second one."))
        if kind == "honest":
            return raw_completion(json.dumps("ANSWER: 2"))
        if kind == "cut":
            return raw_completion(json.dumps("ANSWER: "), finish="length")
        if kind == "refusal":
            return raw_completion("null", refusal="I cannot play games.")
        return raw_completion("null", finish="length", reasoning_content="Let me think step by step about")

    return api


@pytest.fixture(scope="module")
def server():
    api = server_app()
    with LoopbackServer(api) as running:
        running.app = api
        running.base = running.url.removesuffix("/v1")
        yield running


def guided(text="pick"):
    return Request(messages=[{"role": "user", "content": text}], sampling=Sampling(guided=True, max_new_tokens=8), grammar=ANSWER)


# -- text that is not valid Unicode ------------------------------------------------------------
def test_a_lone_surrogate_is_replaced_where_a_reply_enters_and_the_turn_says_so():
    match = new_match("dialogym/Reference-v0", seed=0)
    (seat,) = match.to_act()
    match.submit(seat, "CLUE: the red\ud800 one")
    turn = match.turns[-1]
    assert turn.raw == "CLUE: the red\ufffd one" and "1 unpaired surrogate" in turn.note
    assert "\ud800" not in json.dumps(match.chats[seat], ensure_ascii=False).encode("utf-8", "surrogatepass").decode("utf-8")


def test_surrogate_pairs_are_kept_as_the_character_they_encode():
    assert storable("a\ud83d\ude00b") == ("a\U0001f600b", 0)
    assert storable("\udc00\ud800x") == ("\ufffd\ufffdx", 2)
    assert storable("plain \ufffd") == ("plain \ufffd", 0)


def test_an_episode_built_with_a_surrogate_is_still_written_with_the_ones_after_it(tmp_path):
    bad = Episode(id="bad", game="g", instance_id="i", instance_version="v", instance={}, level="l", seed=0, seats={"a": "m\ud800"})
    good = bad.model_copy(update={"id": "good", "seats": {"a": "m"}})
    with EpisodeWriter(tmp_path / "episodes.jsonl") as writer:
        writer.write(bad)
        writer.write(good)
    kept = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert [e.id for e in kept] == ["bad", "good"]
    assert kept[0].seats == {"a": "m\ufffd"} and "1" in kept[0].tags["repaired"]


@pytest.mark.parametrize("extra", [[], ["--concurrency", "1"]])
def test_play_against_a_server_that_sends_a_lone_surrogate_writes_every_episode(server, tmp_path, extra):
    args = ["play", "reference", "--model", f"openai:{server.base}/surrogate/v1#m?retries=0", "--episodes", "2",
            "--out", str(tmp_path), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 episodes in" in result.output and "tok/s" not in result.output  # a server gives no token ids: no "0 tok/s"
    episodes = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert len(episodes) == 2
    assert any(t.note and "surrogate" in t.note for e in episodes for t in e.turns)
    again = CliRunner().invoke(app, args)  # the rerun finds them done
    assert again.exit_code == 0 and "2 of 2 episodes were already done" in again.output


def test_crossplay_against_a_surrogate_server_writes_every_episode(server, tmp_path):
    models = f"openai:{server.base}/surrogate/v1#m?retries=0,scripted"
    args = ["bench", "--games", "reference", "--models", models, "--mode", "crossplay", "--episodes", "2", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    episodes = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert len(episodes) == 4 and {e.tags["mode"] for e in episodes} == {"crossplay"}


# -- guided replies are checked ------------------------------------------------------------------
def test_a_server_that_ignores_grammars_is_found_out_by_its_first_broken_reply(server):
    agent = OpenAIAgent(f"{server.base}/free/v1", "m", max_retries=0)
    with pytest.raises(GrammarIgnored, match=r"/free/v1 \(model 'm'\) ignores move grammars.*without \+guided"):
        agent.act([guided()])
    assert server.app.state.seen[-1]["structured_outputs"] == {"grammar": ANSWER}


def test_a_guided_reply_that_keeps_its_grammar_is_recorded_guided_and_a_free_one_is_not(server):
    agent = OpenAIAgent(f"{server.base}/honest/v1", "m", max_retries=0)
    kept, free = agent.act([guided(), Request(messages=[{"role": "user", "content": "x"}])])
    assert kept.guided and not free.guided


def test_a_guided_reply_cut_at_its_token_cap_counts_if_it_began_a_legal_move(server):
    (reply,) = OpenAIAgent(f"{server.base}/cut/v1", "m", max_retries=0).act([guided()])
    assert reply.guided and reply.text == "ANSWER: "


def test_bench_of_a_guided_model_on_a_server_that_ignores_grammars_stops_with_one_line(server, tmp_path):
    url = f"{server.base}/free/v1"
    args = ["bench", "--games", "reference", "--models", f"openai:{url}#m?retries=0+guided", "--episodes", "2", "--out", str(tmp_path)]
    assert_one_line_error(CliRunner().invoke(app, args), url, "ignores move grammars")
    assert not list(read_episodes(tmp_path / "episodes.jsonl"))  # no free reply recorded as guided


# -- null content ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "said"),
    [("refusal", "refusal 'I cannot play games.'"), ("reasoning", "it spent the reply on reasoning")],
)
def test_a_null_reply_is_an_error_that_says_what_the_server_did(server, kind, said):
    agent = OpenAIAgent(f"{server.base}/{kind}/v1", "m", max_retries=0)
    with pytest.raises(BackendError, match="the server sent no reply text") as err:
        agent.act([Request(messages=[{"role": "user", "content": "x"}])])
    assert said in str(err.value)


def test_a_single_try_is_not_called_tries():
    agent = OpenAIAgent("http://127.0.0.1:9/v1", "m", max_retries=0, timeout_s=2)
    with pytest.raises(BackendError, match=r"no answer after 1 try:"):
        agent.act([Request(messages=[{"role": "user", "content": "x"}])])
