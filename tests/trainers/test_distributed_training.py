"""Distributed training smoke test: dialogym's GRPO and PPO trainers on two CPU processes (gloo).

The parent launches this very file on two ranks with ``torchrun``; each rank builds a
GRPOTrainer (or PPOTrainer) on the toy game with the tiny model and trains for two steps. The trainer
joins the process group itself (``WORLD_SIZE`` > 1), plays its share of the instances,
and sums gradients across ranks. Each rank saves what it played, the gradient of its first
step and its final weights; the parent checks that the ranks played different instances,
took the gradient one process would take on all their episodes, ended with identical
weights, and that only rank 0 wrote the checkpoint and the metrics.

The league case launches ``League.run()`` on two ranks the same way: each rank plays its
share of every iteration, both end with the same learner and pool, only rank 0 writes, and
a league killed after a commit resumes on both ranks from ``state.json``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dialogym.trainers.league as league_module
from dialogym.envs import Episode, read_episodes
from dialogym.trainers.core import TrainerCore
from dialogym.trainers.grpo import GRPOConfig, GRPOTrainer
from dialogym.trainers.league import League, LeagueConfig, train_seeds
from dialogym.trainers.pool import CheckpointPool
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


def launch_command(out_dir: Path, algo: str, *extra: str) -> list[str]:
    # torchrun --standalone picks a free port itself. (`accelerate launch --cpu` runs one
    # process unless mpirun is installed; `accelerate launch --multi_gpu` also starts this
    # script on a CPU-only machine, through the same torch.distributed.run.)
    script = [str(Path(__file__).resolve()), str(out_dir), algo, *extra]
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


# -- a league on two ranks ----------------------------------------------------------------
#: 6 evaluation episodes, 3 instances in both seats: an uneven split (2 + 1) of every opponent's instances
LEAGUE = LeagueConfig(game="dialogym/Reference-v0", model="tiny", iterations=2, episodes=4, eval_episodes=6,
                      learner={"max_new_tokens": 4})
#: every way a league writes to its folder, counted on each rank (only rank 0's counts may be non-zero)
WRITES = [(league_module, "atomic_write_text"), (league_module, "append_text"), (league_module, "EpisodeWriter"),
          (CheckpointPool, "_save"), (CheckpointPool, "add"), (CheckpointPool, "record"), (CheckpointPool, "_recover"),
          (League, "_commit"), (League, "_staged_adapter"), (TrainerCore, "_write_checkpoint")]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def league_rank_main(out_dir: Path, kill: bool) -> None:
    """What each rank of the league case runs; ``kill``: rank 0 dies right after committing
    iteration 1 (a kill -9: no cleanup), which brings the launcher down."""
    import torch.distributed as dist
    from peft import get_peft_model_state_dict

    torch.set_num_threads(1)
    writes = {f"{getattr(owner, '__name__', owner)}.{name}": 0 for owner, name in WRITES}

    def counting(owner, name):
        real, key = getattr(owner, name), f"{getattr(owner, '__name__', owner)}.{name}"

        def wrapper(*args, **kwargs):
            writes[key] += 1
            return real(*args, **kwargs)

        setattr(owner, name, wrapper)

    for owner, name in WRITES:
        counting(owner, name)
    if kill:
        commit = League._commit

        def commit_then_die(self, iteration):
            commit(self, iteration)
            if iteration == 1 and self.rank == 0:
                os._exit(17)

        League._commit = commit_then_die
    league = League(LEAGUE, out_dir / "league")
    trained_on = []
    update = league.learner.update

    def recording_update(episodes):
        trained_on.append([(e.tags["league"], e.seed) for e in episodes])
        # the tiny model breaks every move (reward -1 everywhere, a zero gradient): reward the
        # learner's seat by the episode's place in the plan, so that the update moves the weights
        for e in episodes:
            iteration = int(e.tags["league"].split("-")[1])
            place = train_seeds(LEAGUE.learner.seed, iteration, LEAGUE.episodes).index(e.seed)
            e.rewards[next(seat for seat, agent in e.seats.items() if agent == "learner")] = place / LEAGUE.episodes
        return update(episodes)

    league.learner.update = recording_update
    lines = league.run()
    weights = {k: v.detach().clone() for k, v in get_peft_model_state_dict(league.learner.model, adapter_name="default").items()}
    torch.save({"world_size": league.world_size, "lines": lines, "weights": weights, "writes": writes, "trained_on": trained_on,
                "pool": [e.model_dump() for e in league.pool.entries]}, out_dir / f"league-rank{league.rank}.pt")
    dist.destroy_process_group()


def launch_league(out_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(launch_command(out_dir, "league", *extra), env=ENV, capture_output=True, text=True, timeout=280)


def league_folder(out: Path) -> dict:
    """What a resumed league must share with an uninterrupted one."""
    pool = CheckpointPool(out / "pool", read_only=True)
    return {
        "pool": [(e.name, e.kind, e.parent, e.rating is not None) for e in pool.entries],
        "log": [json.loads(x)["iteration"] for x in (out / "league.jsonl").read_text().splitlines()],
        "matches": sorted((r.a, r.b, r.iteration) for r in pool.results()),
        "episodes": sorted((e.tags["league"], e.seed) for e in read_episodes(out / "episodes.jsonl")),
        "state": json.loads((out / "state.json").read_text())["completed"],
        "learner": sorted(p.name for p in (out / "learner").iterdir()),
        "top": sorted(p.name for p in out.iterdir()),
    }


@pytest.fixture(scope="module")
def league_on_two_ranks(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("league-ddp")
    done = launch_league(out_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out_dir


@pytest.mark.timeout(300)
def test_a_league_on_two_gloo_ranks_splits_the_episodes_and_only_rank_0_writes(league_on_two_ranks):
    from safetensors.torch import load_file

    out = league_on_two_ranks / "league"
    ranks = [torch.load(league_on_two_ranks / f"league-rank{r}.pt") for r in range(WORLD_SIZE)]
    assert [r["world_size"] for r in ranks] == [WORLD_SIZE] * WORLD_SIZE
    # every rank trained on its own share of each iteration's plan; rank 0 recorded them all
    for it in (1, 2):
        plan = [(f"train-{it}", seed) for seed in train_seeds(LEAGUE.learner.seed, it, LEAGUE.episodes)]
        assert [r["trained_on"][it - 1] for r in ranks] == [plan[0::2], plan[1::2]]
    assert league_folder(out)["episodes"] == sorted((f"train-{it}", s) for it in (1, 2) for s in train_seeds(LEAGUE.learner.seed, it, LEAGUE.episodes))
    # the same result on every rank, and it is what the league wrote
    logged = [json.loads(x) for x in (out / "league.jsonl").read_text().splitlines()]
    assert ranks[0]["lines"] == ranks[1]["lines"] == logged and [line["iteration"] for line in logged] == [1, 2]
    pool = CheckpointPool(out / "pool", read_only=True)
    assert ranks[0]["pool"] == ranks[1]["pool"] == [e.model_dump() for e in pool.entries]
    assert pool.names == ["it-0", "it-1", "it-2"] and logged[-1]["ratings"] == {e.name: e.rating for e in pool.entries}
    for line in logged:  # every evaluation episode of both ranks' shares was recorded and scored
        results = [r for r in pool.results() if r.iteration == line["iteration"]]
        assert sorted({r.b for r in results}) == sorted(line["eval"]) and len(results) == LEAGUE.eval_episodes * len(line["eval"])
        for opponent, score in line["eval"].items():
            assert score == pytest.approx(sum(r.score for r in results if r.b == opponent) / LEAGUE.eval_episodes)
    # identical learners, and they are the committed checkpoint and the pool's newest entry
    first, second = (r["weights"] for r in ranks)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in first.items())  # training moved them (B starts at 0)
    for folder in (out / "learner" / "it-2", pool.path_of("it-2")):
        saved = load_file(str(folder / "adapter_model.safetensors"))
        assert saved.keys() == first.keys() and all(torch.equal(saved[k], first[k]) for k in saved)
    # only rank 0 wrote
    assert not any(ranks[1]["writes"].values()), ranks[1]["writes"]
    assert ranks[0]["writes"]["League._commit"] == 1 + LEAGUE.iterations and ranks[0]["writes"]["CheckpointPool.add"] == 3
    assert league_folder(out)["top"] == ["episodes.jsonl", "league.jsonl", "league_config.json", "learner", "pool", "state.json"]


@pytest.mark.timeout(600)
def test_a_league_killed_under_torchrun_resumes_on_every_rank_from_state_json(tmp_path, league_on_two_ranks):
    killed = launch_league(tmp_path, "kill")
    assert killed.returncode != 0
    assert json.loads((tmp_path / "league" / "state.json").read_text())["completed"] == 1
    done = launch_league(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"league-rank{r}.pt") for r in range(WORLD_SIZE)]
    assert [[line["iteration"] for line in r["lines"]] for r in ranks] == [[2], [2]]
    assert [len(r["trained_on"]) for r in ranks] == [1, 1]  # iteration 1 was not replayed
    first, second = (r["weights"] for r in ranks)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in first.items())
    assert league_folder(tmp_path / "league") == league_folder(league_on_two_ranks / "league")
    # ...and it is the uninterrupted league's iteration 2, to the bit
    uninterrupted = torch.load(league_on_two_ranks / "league-rank0.pt")
    assert ranks[0]["lines"] == uninterrupted["lines"][1:]
    assert all(torch.equal(first[k], uninterrupted["weights"][k]) for k in first)


if __name__ == "__main__":
    if sys.argv[2] == "league":
        league_rank_main(Path(sys.argv[1]), kill="kill" in sys.argv[3:])
    else:
        rank_main(Path(sys.argv[1]), sys.argv[2])
