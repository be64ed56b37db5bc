"""The transformers backend on a CUDA GPU (the tiny model; skipped where there is no GPU)."""

import pytest

torch = pytest.importorskip("torch")

from dialogym.agents.base import Request, Sampling  # noqa: E402
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine  # noqa: E402
from dialogym.agents.specs import load_agent  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def cuda_tiny():
    return load_agent("tiny", device="cuda", batch_size=8)


def chat(text):
    return [{"role": "user", "content": text}]


def test_a_model_spec_lands_on_the_gpu_by_default_where_one_exists():
    agent = load_agent("tiny")
    assert agent.device.startswith("cuda") and next(agent.model.parameters()).is_cuda


def test_batched_generation_on_cuda_returns_ids_and_logprobs_of_a_forward_pass(cuda_tiny):
    requests = [Request(messages=chat(text), sampling=Sampling(temperature=1.0, max_new_tokens=8), seed=i) for i, text in enumerate(["a", "longer prompt here"])]
    replies = cuda_tiny.act(requests)
    assert next(cuda_tiny.model.parameters()).is_cuda
    for reply in replies:
        assert reply.token_ids and len(reply.logprobs) == len(reply.token_ids)
        ids = torch.tensor([reply.prompt_token_ids + reply.token_ids], device=cuda_tiny.device)
        with torch.no_grad():
            logits = cuda_tiny.model(ids).logits[0, len(reply.prompt_token_ids) - 1 : -1].float()
        expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(reply.token_ids, device=ids.device)[:, None])[:, 0]
        assert torch.allclose(expected.cpu(), torch.tensor(reply.logprobs), atol=1e-3)


def test_seeded_sampling_on_cuda_replays_and_leaves_the_global_cuda_rng_alone(cuda_tiny):
    sampling = Sampling(temperature=1.0, max_new_tokens=12)
    state = torch.cuda.get_rng_state()
    first = cuda_tiny.act([Request(messages=chat("go"), sampling=sampling, seed=s) for s in (1, 2)])
    again = cuda_tiny.act([Request(messages=chat("go"), sampling=sampling, seed=s) for s in (1, 2)])
    assert [r.token_ids for r in first] == [r.token_ids for r in again]
    assert torch.equal(torch.cuda.get_rng_state(), state)


def test_the_rollout_engine_plays_episodes_with_a_cuda_model(cuda_tiny):
    specs = [EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats={"speaker": "t", "listener": "t"}) for i in range(6)]
    episodes = RolloutEngine({"t": cuda_tiny}, sampling=Sampling(max_new_tokens=16)).run(specs)
    assert len(episodes) == 6
    assert all(t.token_ids and t.logprobs and t.prompt_token_ids for e in episodes for t in e.turns)
