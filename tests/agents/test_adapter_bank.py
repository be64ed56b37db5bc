"""LoRA checkpoints swapped on one base model: each agent plays with its own adapter."""

import torch
from peft import LoraConfig, get_peft_model

from dialogym.agents.adapters import AdapterBank
from dialogym.agents.base import Request, Sampling
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.models import tiny_model


def save_adapter(path, seed):
    model, _ = tiny_model(seed=0)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        peft = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft.save_pretrained(path)
    return str(path)


def test_each_adapter_agent_generates_like_a_model_loaded_with_that_adapter_alone(tmp_path):
    a, b = save_adapter(tmp_path / "a", 1), save_adapter(tmp_path / "b", 2)
    greedy = [Request(messages=[{"role": "user", "content": "hello"}], sampling=Sampling(temperature=0.0, max_new_tokens=10))]
    model, tokenizer = tiny_model(seed=0)
    bank = AdapterBank(TransformersAgent(model, tokenizer, name="base"))
    agents = {"a": bank.agent("a", a), "b": bank.agent("b", b), "base": bank.agent("base")}
    replies = {name: agent.act(greedy)[0].token_ids for name, agent in agents.items()}

    from peft import PeftModel

    for name, path in (("a", a), ("b", b)):
        alone_model, tok = tiny_model(seed=0)
        alone = TransformersAgent(PeftModel.from_pretrained(alone_model, path), tok)
        assert replies[name] == alone.act(greedy)[0].token_ids
    plain_model, tok = tiny_model(seed=0)
    assert replies["base"] == TransformersAgent(plain_model, tok).act(greedy)[0].token_ids
    assert len({tuple(ids) for ids in replies.values()}) == 3  # the adapters really differ
    assert sorted(bank.loaded) == ["a", "b"]  # each adapter was loaded once


def test_an_adapter_agent_is_built_guided_or_not(tmp_path):
    model, tokenizer = tiny_model(seed=0)
    bank = AdapterBank(TransformersAgent(model, tokenizer, name="base"))
    assert bank.agent("a", save_adapter(tmp_path / "a", 1), guided=True).guided
    assert not bank.agent("base").guided
