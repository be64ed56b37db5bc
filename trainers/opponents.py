"""Opponent samplers of a league: which past checkpoint (or fixed agent) fills a seat.

Each sampler maps the pool's candidate names to a probability vector; :meth:`sample` draws
from it with the generator it is given. Definitions (``w_i`` = the learner's win rate
against candidate ``i``, 0.5 when they never met):

- ``latest``: all mass on the newest checkpoint (plain self-play);
- ``base``: all mass on the oldest checkpoint, the league's base model (``it-0``);
- ``uniform``: the same mass on every candidate (fictitious self-play);
- ``recency``: with probability ``p_latest`` the newest, else geometric weights
  ``decay^age`` over the older ones (AlphaStar-style main-agent mixture);
- ``pfsp``: prioritised fictitious self-play, weights ``f(w_i)`` with ``squared``:
  ``(1 - w)^2`` (focus on opponents the learner loses to) or ``variance``: ``w (1 - w)``
  (focus on even matches);
- ``fixed``: uniform over a fixed list of model specs (scripted players, external models),
  which a league keeps as ``external`` pool entries so that results against them are rated;
- a mixture ``a*<sampler>+b*<sampler>``: the samplers' probabilities weighted ``a : b``
  (AlphaStar's main agents mix self-play and PFSP this way); ``0.5*base+0.5*pfsp`` keeps
  half of the training games against the base, so a best reply to the newest checkpoints
  cannot forget how to beat it.

For asymmetric games, :class:`PerRole` gives each opponent role its own sampler
(``--sampler speaker=pfsp,listener=fixed:scripted``); every opponent seat of a game with
more than two seats is drawn independently.
"""

from __future__ import annotations

import math
import re
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


class Base(Sampler):
    name = "base"

    def probabilities(self, candidates, win_rate=None):
        p = np.zeros(len(candidates))
        p[0] = 1.0
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


PFSP_WEIGHTINGS = ("squared", "variance")


@dataclass
class PFSP(Sampler):
    weighting: str = "squared"
    name: str = "pfsp"

    def __post_init__(self) -> None:
        if self.weighting not in PFSP_WEIGHTINGS:
            raise ValueError(f"unknown PFSP weighting {self.weighting!r}; use 'pfsp:squared' or 'pfsp:variance'")

    def probabilities(self, candidates, win_rate=None):
        w = np.array([0.5 if (r := (win_rate(c) if win_rate else None)) is None else float(r) for c in candidates])
        weights = (1.0 - w) ** 2 if self.weighting == "squared" else w * (1.0 - w)
        if weights.sum() <= 0:  # the learner beats (or draws) everyone: fall back to uniform
            return np.full(len(candidates), 1.0 / len(candidates))
        return weights / weights.sum()


def entry_name(spec: str) -> str:
    """The pool name of a fixed opponent: its model spec, made a plain folder name."""
    return re.sub(r"[^A-Za-z0-9_.:+=-]", "_", spec).lstrip(".") or "_"


@dataclass
class Fixed(Sampler):
    """Uniform over fixed model specs; draws the pool names (:func:`entry_name`) under
    which a league keeps them as ``external`` entries, so their results are rated."""

    specs: list[str] = field(default_factory=list)
    name: str = "fixed"

    def __post_init__(self) -> None:
        from dialogym.agents.specs import parse_spec

        if not self.specs:
            raise ValueError("'fixed' needs model specs, e.g. fixed:scripted,smollm2")
        for spec in self.specs:
            parse_spec(spec)  # a bad spec fails now, not at the first draw
        if len(self.entries) != len(self.specs):
            raise ValueError(f"fixed:{','.join(self.specs)}: two specs repeat or share the pool name {list(self.entries)}; list each once")

    @property
    def entries(self) -> dict[str, str]:
        """pool name -> model spec"""
        return {entry_name(s): s for s in self.specs}

    def probabilities(self, candidates, win_rate=None):
        return np.full(len(candidates), 1.0 / len(candidates))

    def sample(self, candidates, rng, win_rate=None):
        return super().sample(list(self.entries), rng, win_rate)


@dataclass
class Mixture(Sampler):
    """``weights[k]``-weighted sum of ``parts[k]``'s probabilities over the same candidates
    (the weights are normalised)."""

    parts: list[Sampler] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    name: str = "mixture"

    def __post_init__(self) -> None:
        if not self.parts or len(self.parts) != len(self.weights) or any(not 0 < w < math.inf for w in self.weights):
            raise ValueError("a mixture needs samplers with positive weights, e.g. 0.5*base+0.5*pfsp")
        if any(isinstance(p, Fixed | Mixture) for p in self.parts):
            raise ValueError("a mixture draws from the pool's checkpoints: 'fixed' (or another mixture) cannot be a part of it")

    def probabilities(self, candidates, win_rate=None):
        w = np.asarray(self.weights, dtype=float) / sum(self.weights)
        return sum(wk * part.probabilities(candidates, win_rate) for wk, part in zip(w, self.parts, strict=True))


@dataclass
class PerRole:
    """A sampler per role of the opponent seat; roles not named use ``default``."""

    samplers: Mapping[str, Sampler]
    default: Sampler = field(default_factory=Uniform)

    def for_role(self, role: str) -> Sampler:
        return self.samplers.get(role, self.default)


SAMPLER_HELP = (
    "latest | base | uniform | recency[:p_latest[:decay]] | pfsp[:squared|variance] | fixed:<spec>,<spec> | "
    "a mixture <weight>*<sampler>+<weight>*<sampler> (e.g. 0.5*base+0.5*pfsp) | "
    "per role: <role>=<sampler>,<role>=<sampler>[,*=<default>] (e.g. speaker=pfsp,listener=fixed:scripted)"
)


def make_sampler(spec: str, roles: Sequence[str] | None = None) -> Sampler | PerRole:
    """Parse a ``--sampler`` value (:data:`SAMPLER_HELP`); every argument is checked here.

    ``role=sampler`` pairs give each opponent role its own sampler (``*`` sets the one of
    roles not named, uniform by default); ``roles``, when given, are the game's roles that
    the names must come from."""
    if "=" not in spec:
        return _single(spec)
    pairs: list[list[str]] = []
    for piece in spec.split(","):
        if "=" in piece.split(":", 1)[0]:
            pairs.append(piece.split("=", 1))
        elif pairs:  # a comma inside fixed:<spec>,<spec>
            pairs[-1][1] += "," + piece
        else:
            raise ValueError(f"sampler {spec!r}: expected <role>=<sampler> pairs, e.g. speaker=pfsp,listener=uniform")
    samplers = {role.strip(): _single(value.strip()) for role, value in pairs}
    default = samplers.pop("*", Uniform())
    unknown = sorted(set(samplers) - set(roles)) if roles is not None else []
    if unknown:
        raise ValueError(f"sampler {spec!r} names roles {unknown} that the game does not have; its roles are {list(roles or [])}")
    return PerRole(samplers, default)


def _single(spec: str) -> Sampler:
    if _WEIGHT.match(spec):  # a mixture starts with a weight (a model spec may hold "+": smollm2+guided)
        return _mixture(spec)
    kind, _, arg = spec.partition(":")
    if kind == "latest" and not arg:
        return Latest()
    if kind == "base" and not arg:
        return Base()
    if kind == "uniform" and not arg:
        return Uniform()
    if kind == "recency":
        try:
            parts = [float(x) for x in arg.split(":")] if arg else []
        except ValueError:
            parts = [-1.0]
        if len(parts) > 2 or not all(0.0 <= x <= 1.0 for x in parts[:1]) or not all(x > 0 for x in parts[1:]):
            raise ValueError(f"sampler {spec!r}: use recency[:p_latest[:decay]] with 0 <= p_latest <= 1 and decay > 0, e.g. recency:0.5:0.7")
        return Recency(*parts)
    if kind == "pfsp":
        return PFSP(arg or "squared")
    if kind == "fixed":
        return Fixed([s for s in arg.split(",") if s])
    raise ValueError(f"unknown opponent sampler {spec!r}; use {SAMPLER_HELP}")


_WEIGHT = re.compile(r"\s*[-+]?(\d|\.\d|inf|nan)", re.IGNORECASE)


def _mixture(spec: str) -> Mixture:
    parts, weights = [], []
    for term in spec.split("+"):
        weight, star, inner = term.partition("*")
        try:
            weights.append(float(weight) if star else float("nan"))
        except ValueError:
            weights.append(float("nan"))
        if not star or not 0 < weights[-1] < math.inf:
            raise ValueError(f"sampler {spec!r}: write a mixture as <weight>*<sampler>+<weight>*<sampler> with positive weights, e.g. 0.5*base+0.5*pfsp")
        parts.append(_single(inner.strip()))
    return Mixture(parts, weights)
