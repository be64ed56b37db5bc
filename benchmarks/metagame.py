"""The empirical meta-game: who beats whom, the Nash mixture of the members, and how exploitable each is.

The members are the players of a set of pairings (models, checkpoints, scripted players). The
**payoff table** ``T`` holds the row member's mean score against the column member (win 1, tie
0.5, loss 0) over the ``n_ij`` games they played, with a 95% percentile bootstrap interval
(the pair's games resampled, :func:`~.ratings.win_matrix_intervals`); ``T_ii = 0.5`` by
definition, and a pair that never met has no value (NaN, listed by
:meth:`PayoffTable.missing`).

Picking a member to play is a two-player zero-sum game whose payoff to the row picker is

    M = T - 0.5                      (M_ij = -M_ji when every pair met: a symmetric zero-sum game)

and its **Nash equilibrium** is the row player's maximin mixture, a linear program
(:func:`nash`, solved with scipy's HiGHS):

    maximise   v
    subject to sum_i x_i M_ij >= v      for every column j      (M^T x >= v)
               sum_i x_i = 1,  x >= 0

``v`` is the game's value (0 for a symmetric game). Where several mixtures reach ``v`` (every
game a tie, or two members that play alike), a second program picks the most even of them:

    minimise   t
    subject to M^T x >= v,  sum_i x_i = 1,  0 <= x_i <= t

so interchangeable members share their weight (an all-tie table gives the uniform mixture)
instead of the solver's first vertex getting it all.

**Exploitability** of a mixture ``x`` (:func:`exploitability`) is what the best member scores
against it, above a tie:

    exploitability(x) = max_j (M x)_j = max_j sum_i M_ji x_i           (>= 0 when M is antisymmetric)

For a member ``i`` (``x = e_i``) it is ``max_j M_ji``: how much the member that beats ``i`` most
beats it; 0 for a member nobody beats, 0.5 for one some member beats every time. For the Nash
mixture it is ``-v``, 0 up to the solver's tolerance in a symmetric game: no member beats the
equilibrium. Exploitability rests on the mean scores; the table's intervals say how sure they are.

A table with a missing pair is not solved: :meth:`PayoffTable.zero_sum` (and so :func:`solve`)
refuses it with an error naming the pairs, rather than guessing their result; :func:`metagame`
returns it unsolved (``mixture`` None) with the table and its ``missing`` pairs.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dialogym.envs.files import atomic_write_json, atomic_write_text

from .ratings import Pairing, win_matrix, win_matrix_intervals
from .scores import BOOTSTRAP_SAMPLES, Estimate


@dataclass(frozen=True)
class PayoffTable:
    """Every member's mean score against every other: ``mean[i, j]`` of ``players[i]`` against
    ``players[j]`` over ``n[i, j]`` games, its 95% bootstrap interval ``[lo, hi]``; the diagonal
    is 0.5 (``n`` 0), a pair that never met NaN."""

    players: list[str]
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray

    def missing(self) -> list[tuple[str, str]]:
        """The pairs ``(a, b)``, ``a`` before ``b``, that never played each other."""
        k = len(self.players)
        return [(self.players[i], self.players[j]) for i in range(k) for j in range(i + 1, k) if self.n[i, j] == 0]

    def zero_sum(self) -> np.ndarray:
        """``M = mean - 0.5``: the row member's payoff in the zero-sum meta-game. Refuses a table
        with a missing pair, naming it, rather than guessing how that pair would have played."""
        missing = self.missing()
        if missing:
            pairs = ", ".join(f"{a} vs {b}" for a, b in missing)
            raise ValueError(
                f"payoff table: {len(missing)} pair(s) never played each other ({pairs}); the meta-game "
                "needs every pair: play them (cross-play without --seat) or leave those players out"
            )
        return self.mean - 0.5

    def restricted(self, players: Sequence[str]) -> PayoffTable:
        """The table of ``players`` alone (in this table's order): the sub-game of some
        members, say a league's checkpoints without the scripted panel."""
        unknown = sorted(set(players) - set(self.players))
        if unknown:
            raise ValueError(f"payoff table: no member {', '.join(unknown)}")
        keep = set(players)
        at = [i for i, name in enumerate(self.players) if name in keep]
        grid = np.ix_(at, at)
        return PayoffTable(players=[self.players[i] for i in at], mean=self.mean[grid], lo=self.lo[grid], hi=self.hi[grid],
                           n=self.n[grid])

    def cell(self, a: str, b: str) -> Estimate:
        """``a``'s mean score against ``b`` with its interval and number of games."""
        i, j = self.players.index(a), self.players.index(b)
        return Estimate(float(self.mean[i, j]), float(self.lo[i, j]), float(self.hi[i, j]), int(self.n[i, j]))

    def as_dict(self) -> dict[str, Any]:
        """Matrices in ``players`` order (rows: the member, columns: its opponent); JSON null where
        a pair never met."""
        return {"mean": _lists(self.mean), "lo": _lists(self.lo), "hi": _lists(self.hi), "n": self.n.astype(int).tolist()}


def natural_key(name: str) -> list[str | int]:
    """Sort key that reads the numbers in a name as numbers: ``it-2`` before ``it-10``."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name))]


def payoff_table(
    pairings: Sequence[Pairing], *, players: Sequence[str] = (), samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> PayoffTable:
    """The payoff table of ``pairings`` (``(a, b, score of a)``): the players sorted (``players``
    adds members that played no game yet), each cell's mean, bootstrap interval and count from
    :func:`~.ratings.win_matrix` and :func:`~.ratings.win_matrix_intervals`, the diagonal 0.5."""
    played, rate, n = win_matrix(pairings)
    _, lo, hi = win_matrix_intervals(pairings, samples=samples, seed=seed)
    names = sorted({*played, *players}, key=natural_key)
    at = [names.index(name) for name in played]
    grid = np.ix_(at, at)
    table = {"mean": rate, "lo": lo, "hi": hi}
    out = {}
    for key, values in table.items():
        full = np.full((len(names), len(names)), np.nan)
        full[grid] = values
        np.fill_diagonal(full, 0.5)
        out[key] = full
    counts = np.zeros((len(names), len(names)), dtype=int)
    counts[grid] = n
    return PayoffTable(players=names, n=counts, **out)


def nash(payoff: np.ndarray) -> tuple[np.ndarray, float]:
    """``(mixture, value)``: the row player's maximin mixture of the zero-sum matrix game
    ``payoff`` (the row's gain, e.g. :meth:`PayoffTable.zero_sum`) and the game's value; of
    several equilibria, the most even one (module docstring)."""
    from scipy.optimize import linprog

    payoff = np.asarray(payoff, dtype=float)
    if payoff.ndim != 2 or not payoff.size:
        raise ValueError(f"nash: the payoff must be a non-empty matrix, got shape {payoff.shape}")
    if not np.isfinite(payoff).all():
        raise ValueError("nash: the payoff matrix has missing (NaN) or infinite cells; fill every pair first")
    rows, cols = payoff.shape
    # variables (x_1..x_rows, v): minimise -v subject to v - (M^T x)_j <= 0 and sum x = 1
    a_ub = np.hstack([-payoff.T, np.ones((cols, 1))])
    a_eq = np.hstack([np.ones((1, rows)), np.zeros((1, 1))])
    bounds = [(0.0, None)] * rows + [(None, None)]
    first = linprog(np.r_[np.zeros(rows), -1.0], A_ub=a_ub, b_ub=np.zeros(cols), A_eq=a_eq, b_eq=[1.0], bounds=bounds)
    if first.status != 0:
        raise RuntimeError(f"nash: the linear program failed: {first.message}")
    value = float(first.x[-1]) + 0.0  # no -0.0
    # variables (x_1..x_rows, t): minimise t subject to x_i <= t and M^T x >= value
    a_ub = np.vstack([np.hstack([-payoff.T, np.zeros((cols, 1))]), np.hstack([np.eye(rows), -np.ones((rows, 1))])])
    b_ub = np.r_[np.full(cols, -value), np.zeros(rows)]
    even = linprog(np.r_[np.zeros(rows), 1.0], A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=[(0.0, None)] * (rows + 1))
    x = even.x[:-1] if even.status == 0 else first.x[:-1]  # (HiGHS keeps its own feasibility tolerance)
    x = np.clip(x, 0.0, None)
    return x / x.sum(), value


def exploitability(payoff: np.ndarray, mixture: np.ndarray) -> float:
    """What the best row of ``payoff`` gains against a column player who plays ``mixture``:
    ``max_j (M x)_j``. For a member (``mixture`` one-hot) how much its strongest opponent beats it."""
    return float(np.max(np.asarray(payoff) @ np.asarray(mixture)))


@dataclass(frozen=True)
class MetaGame:
    """A payoff table and, when every pair met, its Nash mixture, value and the exploitability
    of each member (how much its strongest opponent, ``beaten_most_by``, beats it) and of the
    mixture; ``beaten_most_by`` is None for a member nobody beats. Unsolved (``mixture`` None)
    when a pair is missing."""

    table: PayoffTable
    mixture: np.ndarray | None = None
    value: float | None = None
    member_exploitability: np.ndarray | None = None
    nash_exploitability: float | None = None
    beaten_most_by: list[str | None] | None = None

    @property
    def solved(self) -> bool:
        return self.mixture is not None

    def as_dict(self) -> dict[str, Any]:
        """What ``metagame.json`` and ``summary.json`` hold (NaN as null)."""
        players = self.table.players
        out: dict[str, Any] = {"players": players, "table": self.table.as_dict(), "missing": [list(p) for p in self.table.missing()]}
        if self.mixture is None or self.member_exploitability is None or self.beaten_most_by is None:
            return {**out, "nash": None, "exploitability": None}
        return {
            **out,
            "nash": {
                "mixture": dict(zip(players, self.mixture.tolist(), strict=True)),
                "value": self.value,
                "exploitability": self.nash_exploitability,
            },
            "exploitability": {
                name: {"value": float(self.member_exploitability[i]), "beaten_most_by": self.beaten_most_by[i]}
                for i, name in enumerate(players)
            },
        }


def solve(table: PayoffTable) -> MetaGame:
    """The meta-game of ``table``; raises ``ValueError`` naming the pairs that never met."""
    payoff = table.zero_sum()
    mixture, value = nash(payoff)
    members = np.array([exploitability(payoff, one_hot) for one_hot in np.eye(len(table.players))])
    return MetaGame(
        table=table,
        mixture=mixture,
        value=value,
        member_exploitability=members,
        nash_exploitability=exploitability(payoff, mixture),
        beaten_most_by=[table.players[j] if payoff[j, i] > 0 else None for i, j in enumerate(np.argmax(payoff, axis=0))],
    )


def metagame(
    pairings: Sequence[Pairing], *, players: Sequence[str] = (), samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> MetaGame:
    """:func:`payoff_table` of ``pairings`` and, when every pair met, its :func:`solve`; else the
    table alone (``mixture`` None, the missing pairs in ``table.missing()``)."""
    table = payoff_table(pairings, players=players, samples=samples, seed=seed)
    return solve(table) if not table.missing() else MetaGame(table=table)


def write_metagame(out: Path, game: MetaGame) -> list[Path]:
    """``out/metagame.json`` (:meth:`MetaGame.as_dict`) and ``out/payoff.csv`` (the mean scores,
    a header row and column of the players, empty where a pair never met), written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["player", *game.table.players])
    for name, row in zip(game.table.players, _lists(game.table.mean), strict=True):
        writer.writerow([name, *("" if v is None else repr(v) for v in row)])
    return [
        atomic_write_json(out / "metagame.json", game.as_dict(), allow_nan=False),
        atomic_write_text(out / "payoff.csv", buffer.getvalue()),
    ]


def _lists(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if math.isnan(v) else float(v) for v in row] for row in matrix.tolist()]
