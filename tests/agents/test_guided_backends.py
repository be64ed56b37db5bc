"""Guided requests: every backend constrains the reply to the request's grammar."""

import sys
import types

import pytest
import torch

from dialogym.agents.base import Request, Sampling
from dialogym.agents.guidance import GrammarError, accepts, replay_masks
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.models import tiny_model

ANSWER = 'start: "ANSWER: " /[1-3]/'
CLUE = r'''start: "CLUE: " WORD (" " WORD)~0..3
WORD: /[a-z]{1,8}/'''


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_model()
    return TransformersAgent(model, tokenizer, name="tiny")


def request(text, grammar=None, *, seed=0, temperature=1.0, guided=True, max_new_tokens=40):
    return Request(messages=[{"role": "user", "content": text}], seed=seed, grammar=grammar,
                   sampling=Sampling(temperature=temperature, max_new_tokens=max_new_tokens, guided=guided))


def test_accepts_checks_whole_strings_against_a_grammar():
    assert accepts(ANSWER, "ANSWER: 2")
    assert not accepts(ANSWER, "ANSWER: 4") and not accepts(ANSWER, "ANSWER: 2 ") and not accepts(ANSWER, "")
    with pytest.raises(GrammarError, match="does not compile"):
        accepts("start: nowhere", "x")


def test_a_random_model_under_a_grammar_writes_only_strings_the_grammar_accepts(tiny):
    replies = tiny.act([request(f"q{i}", CLUE if i % 2 else ANSWER, seed=i) for i in range(24)])
    for i, reply in enumerate(replies):
        assert accepts(CLUE if i % 2 else ANSWER, reply.text), reply.text
    # the random model does choose: not every guided answer is the same digit
    assert len({r.text for i, r in enumerate(replies) if i % 2 == 0}) > 1


def test_the_reply_ends_when_the_grammar_is_complete(tiny):
    reply = tiny.act([request("q", ANSWER, max_new_tokens=40)])[0]
    assert reply.text.startswith("ANSWER: ") and len(reply.text) == len("ANSWER: 2")
    assert len(reply.token_ids) <= len("ANSWER: 2") + 1  # one token per byte, then end-of-sequence


def test_rows_without_a_grammar_and_unguided_requests_play_free(tiny):
    free, unguided = tiny.act([request("q", None, seed=3), request("q", ANSWER, seed=3, guided=False)])
    plain = tiny.act([request("q", None, seed=3, guided=False)])[0]
    assert free.token_ids == plain.token_ids == unguided.token_ids


def test_a_guided_reply_does_not_depend_on_its_batchmates(tiny):
    alone = tiny.act([request("pick", ANSWER, seed=11)])[0]
    batch = tiny.act([request("other", CLUE, seed=1), request("pick", ANSWER, seed=11), request("x", None, seed=2)])
    assert batch[1].token_ids == alone.token_ids
    assert batch[1].logprobs == pytest.approx(alone.logprobs, abs=1e-5)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_rows_of_other_caps_guided_or_free_share_one_generate_and_each_reply_is_its_own(tiny, monkeypatch, temperature):
    requests = [
        request("short", None, seed=1, temperature=temperature, guided=False, max_new_tokens=3),
        request("clue", CLUE, seed=2, temperature=temperature, max_new_tokens=40),
        request("long", None, seed=3, temperature=temperature, guided=False, max_new_tokens=14),
        request("pick", ANSWER, seed=4, temperature=temperature, max_new_tokens=12),
    ]
    alone = [tiny.act([r])[0] for r in requests]
    calls = []
    generate = tiny.model.generate
    monkeypatch.setattr(tiny.model, "generate", lambda **kw: calls.append(kw["max_new_tokens"]) or generate(**kw))
    together = tiny.act(requests)
    assert calls == [40]  # one call, as long as the longest cap
    assert [r.token_ids for r in together] == [r.token_ids for r in alone]
    assert [r.text for r in together] == [r.text for r in alone]
    for mine, own in zip(together, alone, strict=True):
        assert mine.logprobs == pytest.approx(own.logprobs, abs=1e-5)
    assert len(together[0].token_ids) <= 3 and len(together[2].token_ids) <= 14
    assert [r.guided for r in together] == [False, True, False, True]
    assert accepts(CLUE, together[1].text) and accepts(ANSWER, together[3].text)


def test_logprobs_are_recorded_under_the_mask_and_replay_exactly(tiny):
    reply = tiny.act([request("why", CLUE, seed=5)])[0]
    masks = replay_masks(tiny.grammar_tokenizer(), CLUE, reply.token_ids, tiny.vocab_size(), tiny._eos_ids())
    ids = torch.tensor([reply.prompt_token_ids + reply.token_ids])
    with torch.no_grad():
        logits = tiny.model(input_ids=ids).logits[0, len(reply.prompt_token_ids) - 1 : -1].float()
    logp = torch.log_softmax(logits.masked_fill(~masks, float("-inf")), -1)
    chosen = logp.gather(-1, torch.tensor(reply.token_ids)[:, None])[:, 0]
    assert chosen.tolist() == pytest.approx(reply.logprobs, abs=1e-5)
    # the forced prefix "CLUE: " has one legal token per step: log-prob exactly 0
    assert reply.logprobs[: len("CLUE: ")] == [0.0] * len("CLUE: ")


def test_greedy_unguided_output_is_what_generate_gives(tiny):
    reply = tiny.act([request("hello", None, temperature=0.0, guided=False, max_new_tokens=12)])[0]
    prompt = torch.tensor([reply.prompt_token_ids])
    with torch.no_grad():
        out = tiny.model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12,
                                  do_sample=False, pad_token_id=tiny.tokenizer.pad_token_id)
    expected = out[0, prompt.shape[1]:].tolist()
    assert reply.token_ids == expected[: len(reply.token_ids)]


def test_http_backend_sends_the_grammar_as_vllm_structured_outputs():
    from dialogym.agents.openai_http import OpenAIAgent

    agent = OpenAIAgent("http://x/v1", model="m")
    assert agent._payload(request("q", ANSWER))["structured_outputs"] == {"grammar": ANSWER}
    assert "structured_outputs" not in agent._payload(request("q", ANSWER, guided=False))
    assert "structured_outputs" not in agent._payload(request("q", None))


def test_dialogym_serve_honours_a_grammar_and_refuses_a_broken_one(tiny):
    from fastapi.testclient import TestClient

    from dialogym.agents.server import create_app

    client = TestClient(create_app(tiny))
    body = {"messages": [{"role": "user", "content": "go"}], "max_tokens": 30, "seed": 4}
    for seed in range(4):
        got = client.post("/v1/chat/completions", json={**body, "seed": seed, "structured_outputs": {"grammar": ANSWER}})
        assert got.status_code == 200 and accepts(ANSWER, got.json()["choices"][0]["message"]["content"])
    bad = client.post("/v1/chat/completions", json={**body, "structured_outputs": {"grammar": "start: nowhere"}})
    assert bad.status_code == 422 and "does not compile" in bad.json()["error"]["message"]


def test_http_client_and_server_play_guided_end_to_end(tiny):
    from dialogym.agents.openai_http import OpenAIAgent
    from dialogym.agents.server import create_app
    from tests.agents.test_http_backend import LoopbackServer

    with LoopbackServer(create_app(tiny)) as server:
        agent = OpenAIAgent(server.url, model="tiny")
        replies = agent.act([request(f"q{i}", ANSWER, seed=i) for i in range(3)])
    assert all(accepts(ANSWER, r.text) for r in replies)


def test_vllm_backend_passes_the_grammar_as_per_request_structured_outputs(monkeypatch):
    seen = []
    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = lambda **kw: seen.append(kw) or kw
    vllm.sampling_params = types.SimpleNamespace(StructuredOutputsParams=lambda **kw: ("structured", kw))

    class LLM:
        def chat(self, conversations, params, lora_request=None, use_tqdm=True):
            completion = types.SimpleNamespace(text="ANSWER: 1", token_ids=[1], logprobs=None)
            return [types.SimpleNamespace(prompt_token_ids=[0], outputs=[completion]) for _ in conversations]

    monkeypatch.setitem(sys.modules, "vllm", vllm)
    from dialogym.agents.vllm_backend import VLLMAgent, release_engines

    release_engines()
    agent = VLLMAgent("/models/x", llm=LLM())
    agent.act([request("a", ANSWER), request("b", None), request("c", ANSWER, guided=False)])
    assert seen[0]["structured_outputs"] == ("structured", {"grammar": ANSWER})
    assert "structured_outputs" not in seen[1] and "structured_outputs" not in seen[2]
    release_engines()


def merging_tokenizer():
    """A byte-level BPE tokenizer that also knows "[b", "[be" and "[bet": "[bet]" has several
    spellings (["[bet", "]"] is the tokenizer's own), "[check]" one (a token a byte)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {char: i for i, char in enumerate(alphabet)}
    for merged in ("[b", "[be", "[bet"):
        vocab[merged] = len(vocab)
    vocab["<eos>"] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[("[", "b"), ("[b", "e"), ("[be", "t")]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>")


def test_a_literal_list_of_moves_is_written_in_the_tokenizers_own_spelling_only():
    from dialogym.agents.guidance import RowMasks, grammar_tokenizer, literal_moves

    assert literal_moves('start: ("[check]" | "[bet]")') == ["[check]", "[bet]"]
    assert literal_moves('start: "say \\"hi\\""') == ['say "hi"']
    assert literal_moves(ANSWER) is None and literal_moves(CLUE) is None
    tokenizer = merging_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    eos = [tokenizer.eos_token_id]
    lltok = grammar_tokenizer(tokenizer, len(tokenizer), eos)
    assert tokenizer("[bet]")["input_ids"] == ids(["[bet", "]"])
    listed = 'start: ("[check]" | "[bet]")'
    same_language = 'start: MOVE\nMOVE: "[check]" | "[bet]"'
    spelled, free = RowMasks(lltok, [listed], len(tokenizer), eos), RowMasks(lltok, [same_language], len(tokenizer), eos)
    first = spelled.allowed()[0].nonzero().flatten().tolist()
    assert sorted(first) == sorted(ids(["[", "[bet"]))
    # the grammar mask alone also lets "[bet]" start "[b" or "[be"
    assert set(ids(["[", "[b", "[be", "[bet"])) <= set(free.allowed()[0].nonzero().flatten().tolist())
    # after "[", only "[check]"'s next byte: "[" + "b"... is not how the tokenizer writes "[bet]"
    spelled.advance(ids(["["]), [False])
    assert spelled.allowed()[0].nonzero().flatten().tolist() == ids(["c"])
    # a trainer's replay rebuilds the same masks
    masks = replay_masks(lltok, listed, ids(["[bet", "]"]) + eos, len(tokenizer), eos)
    assert masks[0].nonzero().flatten().tolist() == sorted(first)
    assert masks[1].nonzero().flatten().tolist() == ids(["]"]) and masks[2].nonzero().flatten().tolist() == eos
    with pytest.raises(GrammarError, match="not allowed by the recorded grammar"):
        replay_masks(lltok, listed, ids(["[b", "e", "t", "]"]) + eos, len(tokenizer), eos)


KUHN = 'start: ("[check]" | "[bet]")'
FACING = 'start: ("[call]" | "[fold]")'
SHARED = 'start: ("[call]" | "[check]")'  # both start "[c"


def test_a_literal_list_is_one_choice_between_forced_tokens():
    from dialogym.agents.guidance import choice_of, grammar_tokenizer

    model, tokenizer = tiny_model()  # a token a byte
    bytes_ = grammar_tokenizer(tokenizer, len(tokenizer), [tokenizer.eos_token_id])
    ids = lambda text: tuple(bytes_.tokenize_str(text))  # noqa: E731
    kuhn = choice_of(bytes_, KUHN)
    assert kuhn.prefix == ids("[") and kuhn.rest == {ids("c")[0]: ids("heck]"), ids("b")[0]: ids("et]")}
    assert kuhn.longest == len("[check]") + 1  # and the end of sequence
    shared = choice_of(bytes_, SHARED)
    assert shared.prefix == ids("[c") and shared.rest == {ids("a")[0]: ids("ll]"), ids("h")[0]: ids("eck]")}
    # the tokenizer's own spellings part at the first token: nothing is forced before the choice
    merging = merging_tokenizer()
    own = choice_of(grammar_tokenizer(merging, len(merging), [merging.eos_token_id]), KUHN)
    assert own.prefix == () and own.rest[merging.convert_tokens_to_ids("[bet")] == (merging.convert_tokens_to_ids("]"),)
    # no choice: one move, a move that starts another (the step after it is a choice), not a literal list
    # (or more than one: "[call]" and "[check]" part after "[fold]" has)
    for grammar in ('start: "[bet]"', 'start: ("[bet]" | "[bet] [raise]")', 'start: ("[call]" | "[check]" | "[fold]")', ANSWER, CLUE):
        assert choice_of(bytes_, grammar) is None


@pytest.mark.parametrize("temperature,top_p", [(0.0, 1.0), (5.0, 1.0), (0.7, 0.9)])
def test_jump_forward_choices_are_the_replies_of_step_by_step_decoding(tiny, monkeypatch, temperature, top_p):
    def requests():
        return [Request(messages=[{"role": "user", "content": f"hand {i}"}], seed=100 + i, grammar=grammar,
                        sampling=Sampling(temperature=temperature, top_p=top_p, max_new_tokens=12, guided=True))
                for i, grammar in enumerate([KUHN, FACING, SHARED] * 4)]

    stepwise = tiny.with_(name="stepwise")
    stepwise.jump_forward = False
    expected = stepwise.act(requests())
    jumping = tiny.with_(name="jumping")
    calls = []
    generate = jumping.model.generate
    monkeypatch.setattr(jumping.model, "generate", lambda **kw: calls.append(kw["max_new_tokens"]) or generate(**kw))
    got = jumping.act(requests())
    assert calls == [1]  # one model step for the whole batch
    assert [r.token_ids for r in got] == [r.token_ids for r in expected]
    assert [r.text for r in got] == [r.text for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.logprobs == pytest.approx(theirs.logprobs, abs=1e-5)
        assert mine.prompt_token_ids == theirs.prompt_token_ids and mine.guided
    if temperature:
        assert len({r.text for r in got}) >= 4  # both moves of some grammar were drawn
    # the masks a trainer replays: one token allowed at every step but the choice, which
    # carries the reply's only non-zero log-prob
    for reply, grammar in zip(got[:3], (KUHN, FACING, SHARED), strict=True):
        masks = replay_masks(tiny.grammar_tokenizer(), grammar, reply.token_ids, tiny.vocab_size(), tiny._eos_ids())
        at = 2 if grammar == SHARED else 1
        assert [int(m.sum()) for m in masks] == [2 if t == at else 1 for t in range(len(reply.token_ids))]
        assert all(lp == 0.0 for t, lp in enumerate(reply.logprobs) if t != at) and reply.logprobs[at] < 0


def test_a_cap_below_the_longest_move_or_a_free_row_decodes_step_by_step(tiny, monkeypatch):
    calls = []
    generate = tiny.model.generate
    monkeypatch.setattr(tiny.model, "generate", lambda **kw: calls.append(kw["max_new_tokens"]) or generate(**kw))
    short = tiny.act([request("cut", KUHN, seed=3, max_new_tokens=4)])[0]
    assert calls == [4] and len(short.token_ids) <= 4
    tiny.act([request("a", KUHN, seed=1, max_new_tokens=12), request("b", None, seed=2, guided=False, max_new_tokens=12)])
    assert calls[-1] == 12
