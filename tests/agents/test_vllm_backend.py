"""The vLLM backend: a real GPU run where one exists, else vLLM's interface mocked."""

import sys
import types
from dataclasses import dataclass, field

import pytest

from dialogym.agents.base import Request, Sampling


@dataclass
class FakeSamplingParams:
    temperature: float
    top_p: float
    max_tokens: int
    stop: list | None
    seed: int | None
    logprobs: int


@dataclass
class FakeLoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class FakeLogprob:
    logprob: float


@dataclass
class FakeCompletion:
    text: str
    token_ids: list
    logprobs: list


@dataclass
class FakeOutput:
    prompt_token_ids: list
    outputs: list


@dataclass
class FakeLLM:
    calls: list = field(default_factory=list)

    def chat(self, conversations, params, lora_request=None, use_tqdm=True):
        self.calls.append((conversations, params, lora_request))
        outs = []
        for conv, p in zip(conversations, params, strict=True):
            ids = [7, 8, 9][: p.max_tokens]
            outs.append(
                FakeOutput(
                    prompt_token_ids=[1, 2, len(conv)],
                    outputs=[FakeCompletion(text=conv[-1]["content"].upper(), token_ids=ids, logprobs=[{t: FakeLogprob(-0.5)} for t in ids])],
                )
            )
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    from dialogym.agents.vllm_backend import release_engines

    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = FakeSamplingParams
    vllm.built = []  # the options of every engine built

    def build(**kw):
        vllm.built.append(kw)
        return FakeLLM()

    vllm.LLM = build
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = FakeLoRARequest
    lora.request = request
    vllm.lora = lora
    for name, module in {"vllm": vllm, "vllm.lora": lora, "vllm.lora.request": request}.items():
        monkeypatch.setitem(sys.modules, name, module)
    release_engines()
    yield vllm
    release_engines()


def test_without_vllm_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    from dialogym.agents.vllm_backend import VLLMAgent

    with pytest.raises(ImportError, match=r"pip install 'dialogym\[vllm\]'"):
        VLLMAgent("/models/x")


def test_import_vllm_is_public_and_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    from dialogym.agents.vllm_backend import import_vllm

    with pytest.raises(ImportError, match=r"pip install 'dialogym\[vllm\]'"):
        import_vllm()


def test_batch_maps_sampling_seeds_and_returns_ids_and_logprobs(fake_vllm):
    from dialogym.agents.vllm_backend import VLLMAgent

    agent = VLLMAgent("/models/x")
    requests = [
        Request(messages=[{"role": "user", "content": "a"}], sampling=Sampling(temperature=0.0, max_new_tokens=2), seed=5),
        Request(messages=[{"role": "user", "content": "b"}], sampling=Sampling(stop=("\n",)), seed=6),
    ]
    replies = agent.act(requests)
    (_, params, loras), = agent.llm.calls
    assert [p.seed for p in params] == [5, 6] and params[1].stop == ["\n"] and params[0].max_tokens == 2
    assert loras == [None, None]
    assert [r.text for r in replies] == ["A", "B"]
    assert replies[0].token_ids == [7, 8] and replies[0].logprobs == [-0.5, -0.5]


def test_each_request_can_name_its_own_lora_and_reloads_get_new_names(fake_vllm, tmp_path):
    from dialogym.agents.vllm_backend import VLLMAgent

    agent = VLLMAgent("/models/x")
    a, b = tmp_path / "ckpt-a", tmp_path / "ckpt-b"
    chat = [{"role": "user", "content": "x"}]
    agent.act([Request(messages=chat, meta={"lora": str(a)}), Request(messages=chat, meta={"lora": str(b)}), Request(messages=chat)])
    loras = agent.llm.calls[-1][2]
    assert loras[0].lora_path == str(a) and loras[1].lora_path == str(b) and loras[2] is None
    assert loras[0].lora_int_id != loras[1].lora_int_id
    agent.reload_adapter(str(a))
    agent.act([Request(messages=chat, meta={"lora": str(a)})])
    reloaded = agent.llm.calls[-1][2][0]
    assert reloaded.lora_name != loras[0].lora_name and reloaded.lora_int_id not in (loras[0].lora_int_id, loras[1].lora_int_id)


def test_a_new_adapter_after_a_reload_never_gets_an_id_vllm_already_holds(fake_vllm, tmp_path):
    from dialogym.agents.vllm_backend import VLLMAgent

    agent = VLLMAgent("/models/x")
    chat = [{"role": "user", "content": "x"}]

    def lora_of(path):
        agent.act([Request(messages=chat, meta={"lora": str(path)})])
        return agent.llm.calls[-1][2][0]

    a, b = lora_of(tmp_path / "a"), lora_of(tmp_path / "b")
    agent.reload_adapter(str(tmp_path / "b"))
    c, b2 = lora_of(tmp_path / "c"), lora_of(tmp_path / "b")
    ids = [x.lora_int_id for x in (a, b, b2, c)]
    assert len(set(ids)) == 4, f"LoRA ids {ids}: a reused id makes vLLM serve another adapter's weights"
    assert lora_of(tmp_path / "a").lora_int_id == a.lora_int_id  # an unchanged adapter keeps its id
    assert c.lora_path == str(tmp_path / "c") and b2.lora_name != b.lora_name


def test_specs_on_one_base_model_share_one_engine_and_its_lora_ids(fake_vllm, tmp_path):
    from dialogym.agents.specs import load_agent

    first = load_agent(f"vllm:/models/x+lora:{tmp_path / 'a'}")
    second = load_agent(f"vllm:/models/x+lora:{tmp_path / 'b'}")
    assert first.llm is second.llm and len(fake_vllm.built) == 1
    chat = [Request(messages=[{"role": "user", "content": "x"}])]
    first.act(chat)
    second.act(chat)
    (_, _, (lora_a,)), (_, _, (lora_b,)) = first.llm.calls
    assert lora_a.lora_int_id != lora_b.lora_int_id and lora_b.lora_path == str(tmp_path / "b")
    other = load_agent("vllm:/models/y")
    tuned = load_agent("vllm:/models/x", max_loras=2)
    assert other.llm is not first.llm and tuned.llm is not first.llm and len(fake_vllm.built) == 3
    assert [kw["model"] for kw in fake_vllm.built] == ["/models/x", "/models/y", "/models/x"]


def test_the_engine_caches_prompt_prefixes_across_requests_and_turns(fake_vllm):
    from dialogym.agents.vllm_backend import VLLMAgent

    VLLMAgent("/models/x")
    assert fake_vllm.built[0]["enable_prefix_caching"] is True


def test_agents_given_the_same_llm_share_its_lora_ids(fake_vllm, tmp_path):
    from dialogym.agents.vllm_backend import VLLMAgent

    llm = FakeLLM()
    first, second = VLLMAgent("/m", llm=llm, lora=str(tmp_path / "a")), VLLMAgent("/m", llm=llm, lora=str(tmp_path / "b"))
    chat = [Request(messages=[{"role": "user", "content": "x"}])]
    first.act(chat)
    second.act(chat)
    (_, _, (lora_a,)), (_, _, (lora_b,)) = llm.calls
    assert lora_a.lora_int_id != lora_b.lora_int_id


def test_agents_sharing_an_engine_never_call_it_at_the_same_time(fake_vllm, tmp_path):
    import threading
    import time

    from dialogym.agents.specs import load_agent

    agents = [load_agent(f"vllm:/models/x+lora:{tmp_path / name}") for name in "ab"]
    llm, inside, overlaps = agents[0].llm, [0], []
    chat = llm.chat

    def slow_chat(*args, **kw):
        inside[0] += 1
        overlaps.append(inside[0])
        time.sleep(0.05)
        inside[0] -= 1
        return chat(*args, **kw)

    llm.chat = slow_chat
    request = [Request(messages=[{"role": "user", "content": "x"}])]
    threads = [threading.Thread(target=agent.act, args=(request,)) for agent in agents for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(overlaps) == 6 and max(overlaps) == 1, "vllm.LLM takes one call at a time"


def _has_cuda_and_vllm():
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda_and_vllm(), reason="needs vllm and a CUDA GPU")
def test_real_vllm_plays_the_reference_game():
    from dialogym.agents.models import smollm2_path
    from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
    from dialogym.agents.vllm_backend import VLLMAgent

    agent = VLLMAgent(str(smollm2_path()), gpu_memory_utilization=0.3)
    specs = [EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats={"speaker": "v", "listener": "v"}) for i in range(8)]
    episodes = RolloutEngine({"v": agent}).run(specs)
    assert all(t.token_ids and t.logprobs for e in episodes for t in e.turns)
