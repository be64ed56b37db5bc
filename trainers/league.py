"""Self-play league: an agent trains against a pool of its own past checkpoints.

Each iteration:

1. sample an opponent for every opponent seat of every training episode from the pool
   (``sampler``: latest, uniform, recency, pfsp, fixed — see :mod:`opponents`);
2. play the batch with the rollout engine; the learner takes each seat in turn;
3. update the learner (a LoRA adapter) on its own turns;
4. evaluate it against up to ``eval_opponents`` pool members (greedy, test split, seats
   swapped) and record the results;
5. admit it to the pool as ``it-<i>`` (optionally gated: its mean score against the
   current best-rated member must reach ``gate``), refit the Bradley-Terry ratings, and
   write the iteration's line to ``league.jsonl``, the learner's state and ``state.json``.

Killed at any point, the same command resumes after the last complete iteration: the
pool is rolled back to it and the learner reloaded from its saved state.

Opponents that are LoRA checkpoints play through :class:`AdapterBank`, on the learner's
own base model, with no reload per game.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from dialogym.agents.adapters import AdapterAgent, AdapterBank
from dialogym.agents.base import Sampling
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent
from dialogym.benchmarks.scores import match_score
from dialogym.envs import Episode, EpisodeWriter, spec
from dialogym.envs.episode import atomic_write_text

from .grpo import GRPOConfig, advantages, grpo_loss, token_logprobs
from .opponents import make_sampler
from .pool import CheckpointPool, MatchResult
from .samples import collate, episode_samples

LEARNER = "learner"


class LeagueConfig(BaseModel):
    game: str
    model: str = Field("tiny", description="model spec of the base model (smollm2, tiny, hf:<folder>)")
    iterations: int = Field(2, ge=1)
    episodes: int = Field(8, ge=1, description="training episodes per iteration")
    eval_episodes: int = Field(4, ge=1, description="evaluation episodes against each opponent")
    eval_opponents: int = Field(3, ge=1)
    sampler: str = "pfsp"
    gate: float | None = Field(None, ge=0.0, le=1.0)
    lr: float = Field(1e-3, gt=0)
    lora_rank: int = Field(8, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    max_new_tokens: int = Field(32, ge=1)
    level: str | None = None
    seed: int = 0


class LoraLearner:
    """A LoRA adapter trained with GRPO's clipped loss on its own tokens, with per-role
    baselines (opponent and game-master tokens are context only)."""

    def __init__(self, model_spec: str, *, rank: int = 8, lr: float = 1e-3, seed: int = 0) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        self.base_agent = load_agent(model_spec, dtype="float32")
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
            self.base_agent.model = get_peft_model(self.base_agent.model, config)
        self.model = self.base_agent.model
        self.bank = AdapterBank(self.base_agent)
        self.agent = AdapterAgent(self.bank, "default")  # the adapter being trained
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=lr)
        self.grpo = GRPOConfig(lr=lr, lora_rank=rank, loss_type="dapo")

    def update(self, episodes: Sequence[Episode]) -> dict[str, float]:
        """One GRPO step (:func:`grpo.grpo_loss`, DAPO token normalisation) on the learner's
        samples, with role-conditioned baselines: league episodes are all different
        instances, so the group of a sample is its role, as in SPIRAL."""
        import torch

        samples = episode_samples(episodes, LEARNER)
        if not samples:
            return {"loss": 0.0, "mean_reward": 0.0, "samples": 0.0}
        adv = torch.tensor(advantages(samples, scale=True, baseline="role"), dtype=torch.float32)
        batch = collate(samples, pad_id=self.base_agent.tokenizer.pad_token_id)
        self.model.set_adapter("default")
        self.model.train()
        self.optimizer.zero_grad()
        loss, stats = grpo_loss(token_logprobs(self.model, batch), batch, adv, self.grpo)
        loss.backward()
        self.optimizer.step()
        self.model.eval()
        rewards = [s.reward for s in samples]
        return {"loss": float(loss.detach()), "mean_reward": float(np.mean(rewards)), "samples": float(len(samples)), **stats}

    def save(self, path: Path) -> None:
        """Adapter weights and optimizer state, written to a temporary folder then renamed."""
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
        self.model.save_pretrained(tmp, selected_adapters=["default"])
        torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)

    def load(self, path: Path) -> None:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.model, load_file(str(path / "adapter_model.safetensors")), adapter_name="default")
        self.optimizer.load_state_dict(torch.load(path / "optimizer.pt"))


class League:
    def __init__(self, config: LeagueConfig, out: Path, learner: LoraLearner | None = None) -> None:
        self.config, self.out = config, Path(out)
        self.roles = spec(config.game).game_cls.roles
        self.out.mkdir(parents=True, exist_ok=True)
        self._check_config()
        self.pool = CheckpointPool(self.out / "pool")
        self.learner = learner or LoraLearner(config.model, rank=config.lora_rank, lr=config.lr, seed=config.seed)
        self.sampler = make_sampler(config.sampler)
        self.rng = np.random.default_rng(config.seed)

    def _check_config(self) -> None:
        path = self.out / "league_config.json"
        text = self.config.model_dump_json(indent=1)
        if path.exists() and json.loads(path.read_text()) != json.loads(text):
            raise ValueError(f"{path} holds a different league config; use a new --out folder to start another league")
        atomic_write_text(path, text)

    @property
    def done_iterations(self) -> int:
        state = self.out / "state.json"
        return json.loads(state.read_text())["completed"] if state.exists() else 0

    def _agents(self, names: Sequence[str]) -> dict[str, Any]:
        agents: dict[str, Any] = {LEARNER: self.learner.agent}
        for name in names:
            if name.startswith("spec:"):
                agents[name] = load_agent(name[5:])
                continue
            entry = self.pool.get(name)
            if entry.kind == "lora":
                agents[name] = self.learner.bank.agent(name, str(self.pool.path_of(name)))
            else:
                agents[name] = load_agent(entry.spec)
        return agents

    def _specs(self, opponents: Sequence[Sequence[str]], n: int, seed0: int, split: str, tag: str) -> list[EpisodeSpec]:
        """Episode i seats the learner in role i mod #roles and ``opponents[i]`` (one name
        per other role, in role order) in the remaining seats."""
        specs = []
        for i in range(n):
            learner_seat = self.roles[i % len(self.roles)]
            others = iter(opponents[i % len(opponents)])
            seats = {role: LEARNER if role == learner_seat else next(others) for role in self.roles}
            specs.append(EpisodeSpec(game=self.config.game, seed=seed0 + i, seats=seats, level=self.config.level, split=split, tags={"league": tag}))
        return specs

    def _candidates(self) -> list[str]:
        from .opponents import Fixed

        if isinstance(self.sampler, Fixed):
            return [f"spec:{s}" for s in self.sampler.specs]
        return self.pool.names

    def run(self, progress: bool = False) -> list[dict[str, Any]]:
        start = self.done_iterations
        if start:
            self.pool.rollback(start)
            self.learner.load(self.out / "learner")
        elif not len(self.pool):
            tmp = self.out / ".it-0"
            self.learner.model.save_pretrained(tmp, selected_adapters=["default"])
            self.pool.add("it-0", source=tmp, base_spec=self.config.model, iteration=0)
            shutil.rmtree(tmp)
        log = []
        for iteration in range(start + 1, self.config.iterations + 1):
            log.append(self.iteration(iteration, progress))
        return log

    def iteration(self, iteration: int, progress: bool = False) -> dict[str, Any]:
        c = self.config
        latest = self.pool.latest().name
        candidates = self._candidates()
        # every opponent seat of every episode is drawn independently
        opponents = [
            [self.sampler.sample(candidates, self.rng, lambda other: self.pool.win_rate(latest, other)) for _ in self.roles[1:]]
            for _ in range(c.episodes)
        ]
        sampling = Sampling(temperature=c.temperature, max_new_tokens=c.max_new_tokens)
        engine = RolloutEngine(self._agents({n for names in opponents for n in names}), sampling=sampling, progress=progress)
        with EpisodeWriter(self.out / "episodes.jsonl") as writer:
            played = engine.run(self._specs(opponents, c.episodes, c.seed * 100_003 + iteration * 1_000, "train", f"train-{iteration}"), writer=writer)
        metrics = self.learner.update(played)

        # Evaluate the updated learner against pool members (greedy, held-out instances).
        pool_names = [n for n in candidates if not n.startswith("spec:")] or candidates
        rated = sorted(pool_names, key=lambda n: -(self.pool.get(n).rating or 0.0)) if pool_names == self.pool.names else pool_names
        eval_against = list(dict.fromkeys([latest, *rated]))[: c.eval_opponents] if latest in pool_names else rated[: c.eval_opponents]
        engine = RolloutEngine(self._agents(eval_against), sampling=Sampling(temperature=0.0, max_new_tokens=c.max_new_tokens))
        name = f"it-{iteration}"
        results, scores = [], {}
        for opponent in eval_against:
            specs = self._specs([[opponent] * (len(self.roles) - 1)], c.eval_episodes, 7_000_000 + iteration * 1_000, "test", f"eval-{iteration}")
            episodes = engine.run(specs)
            match = [match_score(e, LEARNER, opponent) for e in episodes]
            scores[opponent] = float(np.mean(match))
            results += [MatchResult(a=name, b=opponent, score=s, game=c.game, iteration=iteration) for s in match]
        best = rated[0] if rated else latest
        admitted = c.gate is None or scores.get(best, 1.0) >= c.gate
        if admitted:
            tmp = self.out / f".{name}"
            self.learner.model.save_pretrained(tmp, selected_adapters=["default"])
            self.pool.add(name, source=tmp, base_spec=c.model, iteration=iteration, parent=latest, step=iteration)
            shutil.rmtree(tmp)
            self.pool.record(r for r in results if r.b in self.pool)
            self.pool.update_ratings()
        line = {
            "iteration": iteration,
            **metrics,
            "admitted": admitted,
            "eval": scores,
            "ratings": {e.name: e.rating for e in self.pool.entries},
        }
        with (self.out / "league.jsonl").open("a") as handle:
            handle.write(json.dumps(line) + "\n")
        self.learner.save(self.out / "learner")
        atomic_write_text(self.out / "state.json", json.dumps({"completed": iteration}))
        return line


def write_league_report(out: Path) -> Path:
    """ratings.png (rating of each checkpoint over iterations), winrates.png and index.html."""
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dialogym.benchmarks.report import atomic_png, plot_win_matrix

    lines = [json.loads(x) for x in (out / "league.jsonl").read_text().splitlines() if x.strip()]
    fig, ax = plt.subplots(figsize=(7, 4))
    names = sorted({n for line in lines for n in line["ratings"]}, key=lambda n: int(n.split("-")[-1]) if n.split("-")[-1].isdigit() else 0)
    for name in names:
        xs = [line["iteration"] for line in lines if line["ratings"].get(name) is not None]
        ys = [line["ratings"][name] for line in lines if line["ratings"].get(name) is not None]
        ax.plot(xs, ys, marker="o", label=name)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("league iteration")
    ax.set_ylabel("Bradley-Terry rating (Elo scale)")
    ax.legend(fontsize=7)
    report = out / "report"
    report.mkdir(exist_ok=True)
    import io

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_png(report / "ratings.png", buffer.getvalue())
    pool = CheckpointPool(out / "pool")
    matches = [(r.a, r.b, r.score) for r in pool.results()]
    if matches:
        atomic_png(report / "winrates.png", plot_win_matrix(matches))
    rows = "".join(
        f"<tr><td>{html.escape(e.name)}</td><td>{e.iteration}</td><td>{'' if e.rating is None else f'{e.rating:.0f} [{e.rating_lo:.0f}, {e.rating_hi:.0f}]'}</td><td>{e.matches}</td></tr>"
        for e in pool.entries
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>dialogym league</title></head><body>"
        "<h1>League</h1><h2>Ratings over iterations</h2><img src='ratings.png' alt='ratings'>"
        + ("<h2>Win rates</h2><img src='winrates.png' alt='win rates'>" if matches else "")
        + "<h2>Checkpoints</h2><table><tr><th>checkpoint</th><th>iteration</th><th>rating [95% CI]</th><th>matches</th></tr>"
        + rows + "</table></body></html>"
    )
    return atomic_write_text(report / "index.html", page)
