"""Ratings from pairwise outcomes: a Bradley-Terry fit with Laplace intervals, OpenSkill, win rates.

Model: ``P(a beats b) = p_a / (p_a + p_b)``. A match ``(a, b, s)`` gives ``a`` the score
``s`` (1 win, 0.5 tie, 0 loss) and ``b`` the score ``1 - s``; ties therefore count half a
win each. The strengths are fitted by Hunter's (2004) minorise-maximise iteration

    p_i <- W_i / sum_j n_ij / (p_i + p_j)

where ``W_i`` is i's total score and ``n_ij`` the number of matches between i and j. To keep
every strength finite (a model that never lost would otherwise run off to infinity) each
model also plays ``prior`` virtual games against a fixed reference of strength 1 and draws
them. Ratings are reported on the Elo scale, ``1000 + 400 * log10(p_i / geometric mean)``,
so 400 points are 10:1 odds. Intervals: ``mu +- 1.96 sigma`` where ``sigma`` comes from the
inverse of the (regularised) log-likelihood's Hessian at the fit, the Laplace
approximation; unlike a bootstrap it stays honest when every match ended the same way.

Beside it, :func:`openskill_ratings` rates the same matches with the maintained
`openskill <https://openskill.me>`_ library (its Weng-Lin Bradley-Terry model, mu 25 and
sigma 25/3 to start; interval ``mu +- 1.96 sigma``). That rating is updated match by match,
so it depends on the order of the matches (here a seeded shuffle) and forgets early
results; the batch fit above uses every match equally and is the headline rating.
:func:`win_matrix_intervals` gives the win-rate matrix percentile bootstrap intervals.

The league reuses :func:`fit_ratings` for its checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .scores import bootstrap

#: One game between two players: ``(a, b, s)``, the score of a: 1 a win, 0.5 a tie, 0 a loss.
#: Named apart from :class:`dialogym.envs.Match`, which is an episode in progress.
Pairing = tuple[str, str, float]
ELO_SCALE = 400.0 / math.log(10.0)
ELO_CENTRE = 1000.0


@dataclass(frozen=True)
class Rating:
    """A rating with its 95% interval and the number of matches behind it (Bradley-Terry:
    Elo scale; OpenSkill: its own mu scale, centred on 25)."""

    mu: float
    lo: float
    hi: float
    sigma: float = 0.0
    matches: int = 0

    def __str__(self) -> str:
        return f"{self.mu:.0f} [{self.lo:.0f}, {self.hi:.0f}]"


def _check(matches: Sequence[Pairing]) -> list[str]:
    names: dict[str, None] = {}
    for a, b, score in matches:
        if a == b:
            raise ValueError(f"a match needs two different players, got {a!r} twice")
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"match {a!r} vs {b!r}: score must be in [0, 1], got {score}")
        names.setdefault(a)
        names.setdefault(b)
    return sorted(names)


def bradley_terry(
    matches: Sequence[Pairing], names: Sequence[str], *, prior: float = 1.0, iterations: int = 1000, tol: float = 1e-10
) -> np.ndarray:
    """Log-strengths (natural log) of ``names`` fitted to ``matches``; the reference is 0."""
    index = {name: i for i, name in enumerate(names)}
    k = len(names)
    wins = np.full(k, 0.5 * prior)  # half of the virtual draws against the reference
    games = np.zeros((k, k))
    for a, b, score in matches:
        i, j = index[a], index[b]
        wins[i] += score
        wins[j] += 1.0 - score
        games[i, j] += 1.0
        games[j, i] += 1.0
    p = np.ones(k)
    for _ in range(iterations):
        denominator = (games / (p[:, None] + p[None, :])).sum(axis=1) + prior / (p + 1.0)
        new = wins / denominator
        new = np.maximum(new, 1e-12)
        if np.max(np.abs(np.log(new) - np.log(p))) < tol:
            p = new
            break
        p = new
    return np.log(p)


def fit_ratings(matches: Sequence[Pairing], *, prior: float = 1.0) -> dict[str, Rating]:
    """Bradley-Terry ratings (Elo scale) of every player in ``matches``, with 95% intervals.

    ``matches`` are ``(a, b, score_of_a)`` with the score in [0, 1] (ties: 0.5). ``prior``
    is the number of virtual draws per player against a reference that keep ratings finite.
    """
    names = _check(matches)
    if not names:
        return {}
    index = {name: i for i, name in enumerate(names)}
    counts = dict.fromkeys(names, 0)
    games = np.zeros((len(names), len(names)))
    for a, b, _ in matches:
        counts[a] += 1
        counts[b] += 1
        games[index[a], index[b]] += 1.0
        games[index[b], index[a]] += 1.0
    theta = bradley_terry(matches, names, prior=prior)
    sigma = _sigma(theta, games, prior)
    mu = ELO_CENTRE + ELO_SCALE * (theta - theta.mean())
    half = 1.96 * ELO_SCALE * sigma
    return {
        name: Rating(mu=float(mu[i]), lo=float(mu[i] - half[i]), hi=float(mu[i] + half[i]), sigma=float(ELO_SCALE * sigma[i]), matches=counts[name])
        for i, name in enumerate(names)
    }


def _sigma(theta: np.ndarray, games: np.ndarray, prior: float) -> np.ndarray:
    """Standard errors of the centred log-strengths (Laplace approximation).

    ``theta`` are log-strengths against the reference (strength 1). The Hessian of the
    negative log-likelihood is ``n_ij p_ij (1 - p_ij)`` off the diagonal (negated) plus the
    virtual games against the reference on the diagonal; centring projects out the mean.
    """
    p = np.exp(theta)
    pij = p[:, None] / (p[:, None] + p[None, :])
    w = games * pij * (1.0 - pij)
    hessian = -w
    np.fill_diagonal(hessian, w.sum(axis=1))
    q = p / (p + 1.0)
    hessian[np.diag_indices_from(hessian)] += prior * q * (1.0 - q)
    covariance = np.linalg.pinv(hessian)
    k = len(theta)
    centre = np.eye(k) - np.full((k, k), 1.0 / k)
    covariance = centre @ covariance @ centre.T
    return np.sqrt(np.clip(np.diag(covariance), 0.0, None))


def win_matrix(matches: Sequence[Pairing]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(names, rate, n)``: ``rate[i, j]`` is i's mean score against j over ``n[i, j]`` matches."""
    names = _check(matches)
    index = {name: i for i, name in enumerate(names)}
    score = np.zeros((len(names), len(names)))
    n = np.zeros_like(score)
    for a, b, s in matches:
        i, j = index[a], index[b]
        score[i, j] += s
        score[j, i] += 1.0 - s
        n[i, j] += 1
        n[j, i] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, score / np.where(n > 0, n, 1), np.nan)
    return names, rate, n


def win_matrix_intervals(
    matches: Sequence[Pairing], *, samples: int = 1000, seed: int = 0
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(names, lo, hi)``: a 95% percentile bootstrap interval of every ``rate[i, j]`` of
    :func:`win_matrix` (the matches of i and j resampled with replacement); NaN where they never met."""
    names = _check(matches)
    index = {name: i for i, name in enumerate(names)}
    scores: dict[tuple[int, int], list[float]] = {}
    for a, b, s in matches:
        scores.setdefault((index[a], index[b]), []).append(s)
        scores.setdefault((index[b], index[a]), []).append(1.0 - s)
    lo = np.full((len(names), len(names)), np.nan)
    hi = lo.copy()
    for (i, j), values in scores.items():
        estimate = bootstrap([np.array(values)], lambda groups: float(groups[0].mean()), samples=samples, seed=seed)
        lo[i, j], hi[i, j] = estimate.lo, estimate.hi
    return names, lo, hi


def openskill_ratings(matches: Sequence[Pairing], *, seed: int = 0) -> dict[str, Rating]:
    """OpenSkill ratings (``openskill``'s Weng-Lin Bradley-Terry model) of every player in
    ``matches``, rated one match at a time in a seeded random order.

    A score above 0.5 is a win, below a loss, 0.5 a draw. ``mu`` starts at 25; the interval
    is ``mu +- 1.96 sigma``. See the module docstring for how it differs from :func:`fit_ratings`.
    """
    from openskill.models import BradleyTerryFull

    names = _check(matches)
    model = BradleyTerryFull()
    ratings = {name: model.rating(name=name) for name in names}
    counts = dict.fromkeys(names, 0)
    for k in np.random.default_rng(seed).permutation(len(matches)):
        a, b, score = matches[k]
        ranks = [0, 0] if score == 0.5 else [0, 1] if score > 0.5 else [1, 0]
        [[ratings[a]], [ratings[b]]] = model.rate([[ratings[a]], [ratings[b]]], ranks=ranks)
        counts[a] += 1
        counts[b] += 1
    out = {}
    for name, r in ratings.items():
        out[name] = Rating(mu=r.mu, lo=r.mu - 1.96 * r.sigma, hi=r.mu + 1.96 * r.sigma, sigma=r.sigma, matches=counts[name])
    return out
