"""Opponent samplers of a league: which past checkpoint (or fixed agent) fills a seat.

Each sampler maps the pool's candidate names to a probability vector; :meth:`sample` draws
from it with the generator it is given. Definitions (``w_i`` = the learner's win rate
against candidate ``i``, 0.5 when they never met):

- ``latest``: all mass on the newest checkpoint (plain self-play);
- ``uniform``: the same mass on every candidate (fictitious self-play);
- ``recency``: with probability ``p_latest`` the newest, else geometric weights
  ``decay^age`` over the older ones (AlphaStar-style main-agent mixture);
- ``pfsp``: prioritised fictitious self-play, weights ``f(w_i)`` with ``squared``:
  ``(1 - w)^2`` (focus on opponents the learner loses to) or ``variance``: ``w (1 - w)``
  (focus on even matches);
- ``fixed``: uniform over a fixed list of model specs (scripted players, external models).

For asymmetric games, :class:`PerRole` gives each role its own sampler; every opponent
seat of a game with more than two seats is drawn independently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

WinRate = Callable[[str], float | None]


class Sampler:
    name = "sampler"

    def probabilities(self, candidates: Sequence[str], win_rate: WinRate | None = None) -> np.ndarray:
        raise NotImplementedError

    def sample(self, candidates: Sequence[str], rng: np.random.Generator, win_rate: WinRate | None = None) -> str:
        if not candidates:
            raise LookupError(f"{self.name}: no candidates to sample an opponent from")
        p = self.probabilities(candidates, win_rate)
        return candidates[int(rng.choice(len(candidates), p=p))]


class Latest(Sampler):
    name = "latest"

    def probabilities(self, candidates, win_rate=None):
        p = np.zeros(len(candidates))
        p[-1] = 1.0
        return p


class Uniform(Sampler):
    name = "uniform"

    def probabilities(self, candidates, win_rate=None):
        return np.full(len(candidates), 1.0 / len(candidates))


@dataclass
class Recency(Sampler):
    p_latest: float = 0.5
    decay: float = 0.7
    name: str = "recency"

    def probabilities(self, candidates, win_rate=None):
        n = len(candidates)
        if n == 1:
            return np.ones(1)
        ages = np.arange(n - 1, 0, -1, dtype=float)  # older candidates first: ages n-1 .. 1
        older = self.decay**ages
        p = np.empty(n)
        p[:-1] = (1.0 - self.p_latest) * older / older.sum()
        p[-1] = self.p_latest
        return p


@dataclass
class PFSP(Sampler):
    weighting: str = "squared"
    name: str = "pfsp"

    def probabilities(self, candidates, win_rate=None):
        rates = np.array([(win_rate(c) if win_rate else None) for c in candidates], dtype=object)
        w = np.array([0.5 if r is None else float(r) for r in rates])
        if self.weighting == "squared":
            weights = (1.0 - w) ** 2
        elif self.weighting == "variance":
            weights = w * (1.0 - w)
        else:
            raise ValueError(f"unknown PFSP weighting {self.weighting!r}; use 'squared' or 'variance'")
        if weights.sum() <= 0:  # the learner beats (or draws) everyone: fall back to uniform
            return np.full(len(candidates), 1.0 / len(candidates))
        return weights / weights.sum()


@dataclass
class Fixed(Sampler):
    specs: list[str] = field(default_factory=list)
    name: str = "fixed"

    def probabilities(self, candidates, win_rate=None):
        return np.full(len(candidates), 1.0 / len(candidates))

    def sample(self, candidates, rng, win_rate=None):
        return super().sample(self.specs, rng, win_rate)


@dataclass
class PerRole:
    """A sampler per role; roles not named use ``default``."""

    samplers: Mapping[str, Sampler]
    default: Sampler = field(default_factory=Uniform)

    def for_role(self, role: str) -> Sampler:
        return self.samplers.get(role, self.default)


def make_sampler(spec: str) -> Sampler:
    """``latest``, ``uniform``, ``recency[:p_latest[:decay]]``, ``pfsp[:squared|variance]``,
    ``fixed:<spec>,<spec>``."""
    kind, _, arg = spec.partition(":")
    if kind == "latest":
        return Latest()
    if kind == "uniform":
        return Uniform()
    if kind == "recency":
        parts = [float(x) for x in arg.split(":") if x] if arg else []
        return Recency(*parts)
    if kind == "pfsp":
        return PFSP(arg or "squared")
    if kind == "fixed":
        specs = [s for s in arg.split(",") if s]
        if not specs:
            raise ValueError("'fixed' needs model specs, e.g. fixed:scripted,smollm2")
        return Fixed(specs)
    raise ValueError(f"unknown opponent sampler {spec!r}; use latest, uniform, recency, pfsp[:squared|variance] or fixed:<specs>")
