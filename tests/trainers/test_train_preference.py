"""DPO pairs and SFT sets in TRL's formats, trained by TRL for one step."""

import json

from dialogym.agents.models import tiny_model
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent
from dialogym.envs import draw_instance
from dialogym.envs.games.reference import ReferenceGame
from dialogym.trainers.preference import dpo_pairs, sft_set, train_dpo, train_sft, write_jsonl


def reference_episodes():
    """The same instance, the listener's answer varied: some right, some wrong."""
    instance = draw_instance(ReferenceGame(), 3, level="easy")

    class Listener:
        name = "learner"

        def __init__(self):
            self.calls = 0

        def act(self, requests):
            from dialogym.agents.base import Reply

            out = []
            for _ in requests:
                self.calls += 1
                out.append(Reply(text=f"ANSWER: {1 + self.calls % 3}"))
            return out

    specs = [
        EpisodeSpec("dialogym/Reference-v0", seed=i, seats={"speaker": "scripted", "listener": "learner"}, instance=instance)
        for i in range(6)
    ]
    return RolloutEngine({"scripted": load_agent("scripted"), "learner": Listener()}).run(specs)


def test_dpo_pairs_share_the_history_and_prefer_the_higher_reward():
    episodes = reference_episodes()
    pairs = dpo_pairs(episodes, "learner")
    assert len(pairs) == 1
    pair = pairs[0]
    target = episodes[0].instance["listener_order"].index(0) + 1
    assert pair["chosen"] == [{"role": "assistant", "content": f"ANSWER: {target}"}]
    assert pair["rejected"][0]["content"] != pair["chosen"][0]["content"]
    assert pair["prompt"][-1]["role"] == "user" and "The speaker's clue" in pair["prompt"][-1]["content"]


def test_sft_set_keeps_only_rewarded_conversations(tmp_path):
    episodes = reference_episodes()
    rows = sft_set(episodes, "learner", min_reward=1.0)
    assert rows and all(row["messages"][-1]["role"] == "assistant" for row in rows)
    assert len(rows) == sum(e.rewards["listener"] >= 1.0 for e in episodes)
    path = write_jsonl(rows, tmp_path / "sft.jsonl")
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows


def test_exported_pairs_and_sets_feed_trls_trainers_for_one_step(tmp_path):
    episodes = reference_episodes()
    model, tokenizer = tiny_model()
    pairs = dpo_pairs(episodes, "learner") * 2
    result = train_dpo(model, tokenizer, pairs, tmp_path / "dpo", ref_model=tiny_model()[0], max_steps=1, per_device_train_batch_size=2, use_cpu=True)
    assert result.global_step == 1 and result.training_loss > 0
    model, tokenizer = tiny_model()
    result = train_sft(model, tokenizer, sft_set(episodes, "learner"), tmp_path / "sft", max_steps=1, per_device_train_batch_size=2, use_cpu=True)
    assert result.global_step == 1 and result.training_loss > 0


def test_per_turn_sft_rows_hold_each_reply_of_the_seat_once_with_its_history():
    specs = [
        EpisodeSpec("dialogym/Negotiation-v0", seed=i, seats={"alice": "scripted", "bob": "learner"})
        for i in range(4)
    ]
    agents = {"scripted": load_agent("scripted"), "learner": load_agent("scripted")}
    episodes = RolloutEngine(agents).run(specs)
    rows = sft_set(episodes, "learner", min_reward=0.0, per_turn=True)
    replies = [t for ep in episodes if ep.played for t in ep.turns if ep.seats[t.seat] == "learner"]
    assert len(rows) == len(replies) > len(episodes)
    for row, turn in zip(rows, replies, strict=True):
        assert row["completion"] == [{"role": "assistant", "content": turn.raw}]
        assert row["prompt"][-1]["role"] == "user" and row["prompt"][-len(turn.messages):] == list(turn.messages)
    first = sum(episodes[0].seats[t.seat] == "learner" for t in episodes[0].turns)
    whole = sft_set(episodes, "learner", min_reward=0.0)[0]["messages"]
    assert rows[first - 1]["prompt"] + rows[first - 1]["completion"] == whole


def test_per_turn_sft_rows_train_with_trl_on_the_completion_only(tmp_path):
    model, tokenizer = tiny_model()
    rows = sft_set(reference_episodes(), "learner", per_turn=True)
    result = train_sft(model, tokenizer, rows, tmp_path / "sft", max_steps=1, per_device_train_batch_size=2, use_cpu=True)
    assert result.global_step == 1 and result.training_loss > 0
