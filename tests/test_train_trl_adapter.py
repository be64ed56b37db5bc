"""TRL's GRPOTrainer plays dialogym games through the rollout-function hook."""

import os

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
