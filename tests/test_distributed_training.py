"""Distributed training smoke test: dialogym's GRPO and PPO trainers on two CPU processes (gloo).

The parent launches this very file on two ranks with ``torchrun``; each rank builds a
GRPOTrainer (or PPOTrainer) on the toy game with the tiny model and trains for two steps. The trainer
joins the process group itself (``WORLD_SIZE`` > 1), plays its share of the instances,
and sums gradients across ranks. Each rank saves what it played, the gradient of its first
step and its final weights; the parent checks that the ranks played different instances,
took the gradient one process would take on all their episodes, ended with identical
weights, and that only rank 0 wrote the checkpoint and the metrics.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dialogym.envs import Episode
from dialogym.trainers.grpo import GRPOConfig, GRPOTrainer
from dialogym.trainers.ppo import PPOConfig, PPOTrainer
from dialogym.trainers.toy import GAME_ID

WORLD_SIZE = 2
STEPS = 2
CONFIG = dict(group_size=2, instances_per_step=2, max_new_tokens=6, lora_rank=0, lr=1e-2, bf16=False, seed=3)
TRAINERS = {"grpo": (GRPOConfig, GRPOTrainer), "ppo": (PPOConfig, PPOTrainer)}


def make_trainer(algo: str, **kwargs) -> GRPOTrainer:
    config_cls, trainer_cls = TRAINERS[algo]
    return trainer_cls(GAME_ID, "tiny", config=config_cls(**CONFIG), **kwargs)


def all_weights(trainer) -> dict[str, torch.Tensor]:
    weights = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    if hasattr(trainer, "value_head"):
        weights.update({f"value_head.{name}": p.detach().clone() for name, p in trainer.value_head.named_parameters()})
    return weights


def flat_gradient(optimizer) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for group in optimizer.param_groups for p in group["params"]]).clone()


def rank_main(out_dir: Path, algo: str) -> None:
    """What each launched rank runs (the launcher sets RANK, WORLD_SIZE, MASTER_ADDR...)."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    trainer = make_trainer(algo, out=out_dir / "run")
    played, gradients = [], []
    play, step = trainer.play, trainer.optimizer.step

    def recording_play(index):
        episodes = play(index)
        played.append([e.model_dump_json() for e in episodes])
        return episodes

    def recording_step():
        gradients.append(flat_gradient(trainer.optimizer))
        step()

    trainer.play, trainer.optimizer.step = recording_play, recording_step
    history = trainer.train(STEPS, log=False)
    weights = all_weights(trainer)
    torch.save({"world_size": trainer.world_size, "episodes": played, "gradients": gradients, "weights": weights,
                "history": history}, out_dir / f"rank{trainer.rank}.pt")
    dist.destroy_process_group()


def launch_command(out_dir: Path, algo: str) -> list[str]:
    # torchrun --standalone picks a free port itself. (`accelerate launch --cpu` runs one
    # process unless mpirun is installed; `accelerate launch --multi_gpu` also starts this
    # script on a CPU-only machine, through the same torch.distributed.run.)
    script = [str(Path(__file__).resolve()), str(out_dir), algo]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD_SIZE}", *script]


def single_process_gradient(algo: str, episodes: list[Episode]) -> torch.Tensor:
    trainer = make_trainer(algo)
    seen = []
    trainer.optimizer.step = lambda: seen.append(flat_gradient(trainer.optimizer))
    trainer.update(episodes)
    return seen[0]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_trainer_on_two_gloo_ranks_takes_the_whole_batch_gradient_and_ranks_stay_identical(tmp_path, algo):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(launch_command(tmp_path, algo), env=env, capture_output=True, text=True, timeout=230)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD_SIZE)]
    assert [r["world_size"] for r in ranks] == [WORLD_SIZE] * WORLD_SIZE
    # each rank played its own share: different instances, whole groups of group_size plays
    first_step = [[Episode.model_validate_json(e) for e in r["episodes"][0]] for r in ranks]
    instances = [{e.instance_id for e in episodes} for episodes in first_step]
    assert all(len(i) == 1 for i in instances) and not instances[0] & instances[1]
    # gradients are reduced: each rank stepped with the gradient of all ranks' episodes together
    alone = single_process_gradient(algo, first_step[0] + first_step[1])
    assert alone.abs().sum() > 0
    for r in ranks:
        torch.testing.assert_close(r["gradients"][0], alone, rtol=1e-4, atol=1e-6)
    # ...so that they end with the same weights, which training moved
    initial = all_weights(make_trainer(algo))
    first, second = (r["weights"] for r in ranks)
    assert first.keys() == second.keys() == initial.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(first["model.embed_tokens.weight"], initial["model.embed_tokens.weight"])
    assert [h["samples"] for h in ranks[0]["history"]] == [4.0] * STEPS
    # only rank 0 wrote: one checkpoint, one line of metrics per step
    run = tmp_path / "run"
    assert (run / "checkpoint" / "model.safetensors").exists()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == STEPS
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint", "metrics.jsonl"]
    if algo == "ppo":
        assert (run / "checkpoint" / "value_head.pt").exists()


if __name__ == "__main__":
    rank_main(Path(sys.argv[1]), sys.argv[2])
