"""TRL's GRPOTrainer plays dialogym games through the rollout-function hook."""

import json
import os
import zlib

import pytest

from dialogym.agents.models import tiny_model
from dialogym.trainers.trl_adapter import DialogymRollout


def test_trl_grpo_trainer_takes_a_step_on_a_dialogym_game(tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    model, tokenizer = tiny_model()
    rollout = DialogymRollout("dialogym/Reference-v0", seat="listener", opponent="scripted", max_new_tokens=8)
    data = rollout.dataset(8)
    assert all(row["prompt"][-1]["role"] == "user" and "clue" in row["prompt"][-1]["content"] for row in data)
    config = GRPOConfig(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4, num_generations=4, max_completion_length=8,
        report_to=[], save_strategy="no", use_cpu=True, beta=0.0, logging_steps=1,
    )
    seen = []

    def reward(completions, dialogym_reward, **kw):
        seen.append(list(dialogym_reward))
        return DialogymRollout.reward(completions, dialogym_reward, **kw)

    trainer = GRPOTrainer(model=model, processing_class=tokenizer, args=config, train_dataset=data,
                          reward_funcs=reward, rollout_func=rollout)
    result = trainer.train()
    assert result.global_step == 1
    assert len(seen) == 1 and len(seen[0]) == 4  # one batch of 4 played episodes was scored
    assert "reward" in trainer.state.log_history[0]


def test_rollout_output_masks_everything_but_the_seats_own_tokens():
    class FakeTrainer:
        def __init__(self):
            self.model, self.processing_class = tiny_model()

    rollout = DialogymRollout("dialogym/Reference-v0", seat="listener", opponent="scripted", max_new_tokens=6)
    data = rollout.dataset(2)
    out = rollout([row["prompt"] for row in data], FakeTrainer())
    assert len(out["prompt_ids"]) == 2
    for completion, mask, logprobs in zip(out["completion_ids"], out["env_mask"], out["logprobs"], strict=True):
        assert len(completion) == len(mask) == len(logprobs) > 0
        assert mask[0] == 1  # the listener's reply comes first; re-prompts after it are masked
    assert all(r in (-1.0, 0.0, 1.0) for r in out["dialogym_reward"])


class Quitter:
    """The scripted opponent, except that it writes nonsense (and so forfeits after the
    retries) on the instances ``quits`` picks."""

    name = "quitter"

    def __init__(self, quits):
        from dialogym.agents.specs import load_agent

        self.scripted, self.quits = load_agent("scripted"), quits

    def act(self, requests):
        from dialogym.agents.base import Reply

        replies = self.scripted.act(requests)
        return [Reply(text="no") if self.quits(r) else reply for r, reply in zip(requests, replies, strict=True)]


def odd_instance(request):
    return zlib.crc32(json.dumps(request.view, sort_keys=True, default=str).encode()) % 2 == 1


def test_instances_the_opponent_ends_before_the_seat_speaks_are_left_out_of_the_dataset():
    rollout = DialogymRollout("dialogym/Reference-v0", seat="listener", max_new_tokens=6)
    rollout.opponent = Quitter(odd_instance)
    assert [rollout.first_prompt(seed) is None for seed in range(8)].count(True) > 0  # some instances end early
    with pytest.warns(UserWarning, match="skipped .* whose match ended before 'listener' spoke"):
        data = rollout.dataset(4)
    assert len(data) == 4 and all("clue" in row["prompt"][-1]["content"] for row in data)

    rollout.opponent = Quitter(lambda request: True)
    with pytest.raises(ValueError, match="the opponent ended .* matches before 'listener' spoke"):
        rollout.dataset(2)


def test_an_episode_the_opponent_ends_early_comes_back_masked_out_with_the_seats_reward():
    class FakeTrainer:
        def __init__(self):
            self.model, self.processing_class = tiny_model()

    rollout = DialogymRollout("dialogym/Reference-v0", seat="listener", max_new_tokens=6)
    prompts = [row["prompt"] for row in rollout.dataset(4)] * 2
    rollout.opponent = Quitter(odd_instance)  # now some of TRL's generations end before the listener speaks
    with pytest.warns(UserWarning, match="episodes ended before 'listener' spoke"):
        out = rollout(prompts, FakeTrainer())
    assert all(len(out[key]) == len(prompts) for key in out)
    early = [sum(mask) == 0 for mask in out["env_mask"]]
    assert 0 < sum(early) < len(prompts)
    for is_early, prompt_ids, completion, mask, reward in zip(early, out["prompt_ids"], out["completion_ids"], out["env_mask"],
                                                              out["dialogym_reward"], strict=True):
        assert len(completion) == len(mask) > 0 and prompt_ids
        if is_early:
            assert mask == [0] and reward in (-1.0, 0.0, 1.0)
        else:
            assert mask[0] == 1


class WrongFirst:
    """The scripted opponent, except that its first try at each turn is nonsense (a re-prompt
    gets the scripted reply)."""

    name = "wrong-first"

    def __init__(self):
        from dialogym.agents.specs import load_agent

        self.scripted = load_agent("scripted")

    def act(self, requests):
        from dialogym.agents.base import Reply

        replies = self.scripted.act(requests)
        return [reply if r.messages[-1]["content"].startswith("Invalid move:") else Reply(text="no")
                for r, reply in zip(requests, replies, strict=True)]


def test_the_adapter_honours_the_registered_max_retries():
    from dialogym.envs import register, spec
    from dialogym.envs.games.reference import ReferenceGame

    class FakeTrainer:
        def __init__(self):
            self.model, self.processing_class = tiny_model()

    register("test/ReferenceNoRetries-v0", ReferenceGame, players=spec("dialogym/Reference-v0").players, max_retries=0)
    lenient = DialogymRollout("dialogym/Reference-v0", seat="listener", max_new_tokens=6)
    lenient.opponent = WrongFirst()
    assert lenient.first_prompt(0) is not None  # the game's own policy: re-prompted, then right

    strict = DialogymRollout("test/ReferenceNoRetries-v0", seat="listener", max_new_tokens=6)
    prompts = [row["prompt"] for row in strict.dataset(2)]
    strict.opponent = WrongFirst()
    assert strict.first_prompt(0) is None  # registered max_retries=0: the first wrong reply forfeits
    with pytest.warns(UserWarning, match="2 of 2 episodes ended before 'listener' spoke"):
        out = strict(prompts, FakeTrainer())
    assert out["env_mask"] == [[0], [0]]


def test_each_generation_of_a_prompt_is_a_new_play_of_its_instance(monkeypatch):
    from dialogym.agents.rollout import RolloutEngine

    class FakeTrainer:
        def __init__(self):
            self.model, self.processing_class = tiny_model()

    rollout = DialogymRollout("dialogym/Reference-v0", seat="listener", max_new_tokens=6)
    prompts = [row["prompt"] for row in rollout.dataset(2)]
    played, run = [], RolloutEngine.run

    def recording_run(engine, specs, **kw):
        played.extend((s.seed, s.play) for s in specs)
        return run(engine, specs, **kw)

    monkeypatch.setattr(RolloutEngine, "run", recording_run)
    rollout(prompts * 2, FakeTrainer())
    assert played == [(0, 1), (1, 1), (0, 2), (1, 2)]  # instance seeds kept; play 0 made the prompts
