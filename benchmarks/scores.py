"""Scores of a benchmark run: quality, % played, overall, with bootstrap intervals.

The formulas (also in docs/benchmark.md):

- ``quality(episode, seat) = 100 * clip((r - lo) / (hi - lo), 0, 1)`` where ``r`` is the
  seat's reward and ``[lo, hi]`` the reward range of that game and seat (the game class's
  ``reward_range``). In cross-play a model's quality in an episode is the mean over
  the seats it filled. In self-play (the model fills every seat) it is the game's
  ``selfplay_score``: the mean over all seats would be a constant in zero-sum games (50 in
  Bargaining whatever the price), so each game names the outcome that shows skill when one
  model plays every side. Games describe themselves (``dialogym.envs.Game``); nothing here
  keeps a per-game table.
- per game and model: ``% played = 100 * completed / episodes``; ``quality`` = mean quality
  over completed episodes; ``overall = % played * quality / 100`` (clembench's clemscore).
- across games: ``% played`` and ``quality`` are the means over games (a game with no
  completed episode counts as quality 0), ``overall`` their product / 100.
- every aggregate carries a 95% percentile bootstrap interval: episodes are resampled with
  replacement (within each game for the cross-game numbers) ``B`` times with a seeded
  generator and the aggregate recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from dialogym.envs import Episode, Game, MissingMetric, Outcome, registered, spec
from dialogym.envs.core import MEAN_SEAT_QUALITY

#: Range of a seat in a game that is not registered (an old run's episodes): the
#: default of ``Game.reward_range``.
DEFAULT_RANGE = Game.seat_reward_range("any seat")
BOOTSTRAP_SAMPLES = 1000


def _game_cls(game_id: str) -> type[Game] | None:
    """The registered class of ``game_id``; None for a game not registered here."""
    return spec(game_id).game_cls if game_id in registered() else None


@cache
def _scoring_game(game_id: str) -> Game:
    # Games hold no episode state, so one instance scores every episode of its id.
    return spec(game_id).game()


def reward_range(game_id: str, seat: str) -> tuple[float, float]:
    """The ``(lo, hi)`` reward range of ``seat`` in ``game_id``: the game class's
    ``reward_range`` (a pair, or a mapping seat -> pair), or :data:`DEFAULT_RANGE` for a game
    not registered."""
    game_cls = _game_cls(game_id)
    if game_cls is None:
        return DEFAULT_RANGE
    try:
        return game_cls.seat_reward_range(seat)
    except ValueError as err:
        raise ValueError(f"{game_id}: {err}") from None


def normalised_reward(episode: Episode, seat: str) -> float:
    """The seat's reward mapped from its range to 0-100, not clipped."""
    lo, hi = reward_range(episode.game, seat)
    return 100.0 * (episode.rewards.get(seat, 0.0) - lo) / (hi - lo)


def quality(episode: Episode, seat: str) -> float:
    """The game's main score of ``seat`` on 0-100: its reward mapped from the reward range.

    ``100 * (reward - lo) / (hi - lo)``, clipped to [0, 100]. Only meaningful on played
    (completed) episodes; aggregates never average it over aborted ones.
    """
    return min(100.0, max(0.0, normalised_reward(episode, seat)))


def selfplay_quality(episode: Episode) -> float:
    """The game's self-play score of ``episode`` on 0-100 (its ``selfplay_score``), clipped.

    For a game not registered: the mean :func:`quality` over all seats. Only meaningful on
    played (completed) episodes.
    """
    game_cls = _game_cls(episode.game)
    if game_cls is None:
        return float(np.mean([quality(episode, seat) for seat in episode.seats]))
    outcome = Outcome(rewards=dict(episode.rewards), metrics=dict(episode.metrics))
    try:
        score = _scoring_game(episode.game).selfplay_score(outcome)
    except MissingMetric as err:
        raise ValueError(
            f"{episode.game}: episode {episode.id} has {err}, which {game_cls.__qualname__}.selfplay_score "
            f"reads; fix the game's selfplay_score (in {game_cls.__module__}) or make its score() report it"
        ) from None
    return min(100.0, max(0.0, float(score)))


def quality_definition(game_id: str, selfplay: bool) -> str:
    """One line saying what quality means for ``game_id`` (for the report)."""
    game_cls = _game_cls(game_id)
    if selfplay and game_cls is not None and game_cls.selfplay_description != MEAN_SEAT_QUALITY:
        return f"self-play quality = {game_cls.selfplay_description}"
    where = "all seats" if selfplay else "the model's seats"
    return f"quality = mean over {where} of 100 × (reward − lo) / (hi − lo), the reward mapped from its range"


def model_seats(episode: Episode, model: str) -> list[str]:
    return [seat for seat, agent in episode.seats.items() if agent == model]


def model_quality(episode: Episode, model: str) -> float:
    """``model``'s quality in ``episode``: :func:`selfplay_quality` when it filled every seat,
    else the mean :func:`quality` over the seats it filled."""
    seats = model_seats(episode, model)
    if not seats:
        raise ValueError(f"episode {episode.id}: {model!r} filled no seat")
    if len(seats) == len(episode.seats):
        return selfplay_quality(episode)
    return float(np.mean([quality(episode, seat) for seat in seats]))


def match_score(episode: Episode, a: str, b: str) -> float:
    """1 if ``a`` won the episode against ``b``, 0.5 on a tie, 0 if it lost.

    An aborted episode is lost by the model whose invalid moves aborted it. Otherwise
    winning means a higher mean *normalised* reward over one's seats, so seats with
    different reward scales (a debater's [-1, 1], a judge's [0, 1]) compare fairly.
    """
    if episode.aborted_by is not None:
        offender = episode.seats.get(episode.aborted_by)
        if offender in (a, b):
            return 0.0 if offender == a else 1.0
    ra = np.mean([normalised_reward(episode, s) for s in model_seats(episode, a)])
    rb = np.mean([normalised_reward(episode, s) for s in model_seats(episode, b)])
    if math.isclose(ra, rb, abs_tol=1e-9):
        return 0.5
    return 1.0 if ra > rb else 0.0


def partner_score(episode: Episode, alone: Episode, a: str) -> float:
    """A cross-play match of a cooperative game (:attr:`~dialogym.envs.Game.cooperative`):
    ``episode`` seats ``a`` beside the opponent, ``alone`` is the opponent's self-play on the
    same instance. 1 if ``a``'s team did better (a higher normalised reward in ``a``'s
    seats), 0.5 on a tie, 0 if worse: ``a`` wins by being the better partner. An episode
    ``a`` aborted is lost, unless the opponent's own team was aborted from ``a``'s seat too:
    the same failure on both sides ties, so a player beside itself scores 0.5."""
    seats = model_seats(episode, a)
    if episode.aborted_by is not None and episode.seats.get(episode.aborted_by) == a and alone.aborted_by not in seats:
        return 0.0
    mine = np.mean([normalised_reward(episode, s) for s in seats])
    theirs = np.mean([normalised_reward(alone, s) for s in seats])
    if math.isclose(mine, theirs, abs_tol=1e-9):
        return 0.5
    return 1.0 if mine > theirs else 0.0


# --------------------------------------------------------------------------- the tidy table
def score_rows(episodes: Iterable[Episode]) -> list[dict[str, Any]]:
    """One row per episode and model taking part: the tidy per-episode score table.

    Columns: ``episode_id, game, level, instance_id, seed, mode, pairing, model, seats,
    opponents, played, aborted_by_model, quality`` (NaN when not played), ``reward`` (mean raw
    reward of the model's seats), ``result`` (1/0.5/0 against the single opponent model,
    NaN in self-play or with several opponents) and ``metric_<name>`` for every game metric.
    """
    rows: list[dict[str, Any]] = []
    for episode in episodes:
        models = list(dict.fromkeys(episode.seats.values()))
        for model in models:
            seats = model_seats(episode, model)
            opponents = [m for m in models if m != model]
            rows.append(
                {
                    "episode_id": episode.id,
                    "game": episode.game,
                    "level": episode.level,
                    "instance_id": episode.instance_id,
                    "seed": episode.seed,
                    "mode": episode.tags.get("mode", ""),
                    "pairing": episode.tags.get("pairing", ""),
                    "model": model,
                    "seats": ",".join(seats),
                    "opponents": ",".join(opponents),
                    "played": episode.played,
                    "aborted_by_model": episode.aborted_by in seats,
                    "quality": model_quality(episode, model) if episode.played else math.nan,
                    "reward": float(np.mean([episode.rewards.get(s, 0.0) for s in seats])),
                    "result": match_score(episode, model, opponents[0]) if len(opponents) == 1 else math.nan,
                    **{f"metric_{name}": value for name, value in sorted(episode.metrics.items())},
                }
            )
    return rows


# --------------------------------------------------------------------------- aggregates
@dataclass(frozen=True)
class Estimate:
    """An aggregate with its 95% bootstrap interval and the number of episodes behind it."""

    value: float
    lo: float
    hi: float
    n: int

    def __str__(self) -> str:
        if math.isnan(self.value):
            return "-"
        return f"{self.value:.1f} [{self.lo:.1f}, {self.hi:.1f}]"

    def as_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n}


NAN_ESTIMATE = Estimate(math.nan, math.nan, math.nan, 0)


def bootstrap(
    groups: Sequence[np.ndarray],
    statistic: Callable[[Sequence[np.ndarray]], float],
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> Estimate:
    """``statistic`` of ``groups`` with a 95% percentile interval.

    Each group (e.g. the episodes of one game) is resampled with replacement on its own, so
    the number of episodes per game stays fixed. ``n`` is the total number of rows.
    """
    n = sum(len(g) for g in groups)
    if n == 0:
        return NAN_ESTIMATE
    value = statistic(groups)
    rng = np.random.default_rng(seed)
    draws = np.empty(samples)
    for i in range(samples):
        draws[i] = statistic([g[rng.integers(0, len(g), len(g))] if len(g) else g for g in groups])
    draws = draws[~np.isnan(draws)]
    if not len(draws):
        return Estimate(value, math.nan, math.nan, n)
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return Estimate(float(value), float(lo), float(hi), n)


def paired_win_rate(pairs: Sequence[Sequence[float]], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> Estimate:
    """The mean match score (1 win, 0.5 tie, 0 loss) of matches played in pairs, with a 95%
    bootstrap interval that resamples instances, not matches.

    Each item of ``pairs`` is one instance: a player's scores on it in every seat order (both
    orders of a two-seat game). The matches of an instance share its difficulty, and together
    cancel the seat's advantage, so they are drawn together; ``n`` is the number of instances.
    """
    try:
        rows = np.asarray(pairs, dtype=float)
    except ValueError:
        raise ValueError("paired_win_rate: every instance needs one score per seat order, and the same number of "
                         f"orders; got {[len(p) for p in pairs]} scores") from None
    if rows.size == 0:
        return NAN_ESTIMATE
    if rows.ndim != 2:
        raise ValueError(f"paired_win_rate: give one row of scores per instance (one per seat order), got an array "
                         f"of shape {rows.shape}")
    return bootstrap([rows], lambda groups: float(groups[0].mean()), samples=samples, seed=seed)


def _played_pct(groups: Sequence[np.ndarray]) -> float:
    return float(np.mean([100.0 * np.mean(~np.isnan(g)) for g in groups]))


def _quality(groups: Sequence[np.ndarray]) -> float:
    # A game with no completed episode counts as quality 0 (it cannot lift the mean).
    return float(np.mean([np.nanmean(g) if np.any(~np.isnan(g)) else 0.0 for g in groups]))


def _overall(groups: Sequence[np.ndarray]) -> float:
    return _played_pct(groups) * _quality(groups) / 100.0


def _nanmean(groups: Sequence[np.ndarray]) -> float:
    values = groups[0][~np.isnan(groups[0])]
    return float(values.mean()) if len(values) else math.nan


@dataclass
class GameScores:
    """Scores of one model on one game (or across games when ``game == "all"``)."""

    game: str
    model: str
    episodes: int
    played_episodes: int
    played: Estimate
    quality: Estimate
    overall: Estimate
    metrics: dict[str, Estimate]

    def as_dict(self) -> dict[str, Any]:
        return {
            "game": self.game,
            "model": self.model,
            "episodes": self.episodes,
            "played_episodes": self.played_episodes,
            "played": self.played.as_dict(),
            "quality": self.quality.as_dict(),
            "overall": self.overall.as_dict(),
            "metrics": {k: v.as_dict() for k, v in self.metrics.items()},
        }


def aggregate(rows: Sequence[dict[str, Any]], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> list[GameScores]:
    """Per (game, model) scores, then per model across games (``game == "all"``).

    Each row's ``quality`` is NaN for an episode that was not played, so one array per
    group carries both % played and quality. Metrics are averaged over played episodes.
    """
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault((row["game"], row["model"]), []).append(row)
    results: list[GameScores] = []
    per_model: dict[str, list[np.ndarray]] = {}
    for (game, model), items in sorted(by_key.items()):
        q = np.array([r["quality"] for r in items], dtype=float)
        per_model.setdefault(model, []).append(q)
        metric_names = sorted({k for r in items for k in r if k.startswith("metric_")})
        metrics = {}
        for name in metric_names:
            values = np.array([r.get(name, math.nan) if r["played"] else math.nan for r in items], dtype=float)
            values = values[~np.isnan(values)]
            metrics[name.removeprefix("metric_")] = bootstrap([values], _nanmean, samples=samples, seed=seed)
        results.append(
            GameScores(
                game=game,
                model=model,
                episodes=len(items),
                played_episodes=int(np.sum(~np.isnan(q))),
                played=bootstrap([q], _played_pct, samples=samples, seed=seed),
                quality=_quality_estimate(q, samples, seed),
                overall=bootstrap([q], _overall, samples=samples, seed=seed),
                metrics=metrics,
            )
        )
    for model, groups in sorted(per_model.items()):
        results.append(
            GameScores(
                game="all",
                model=model,
                episodes=sum(len(g) for g in groups),
                played_episodes=int(sum(np.sum(~np.isnan(g)) for g in groups)),
                played=bootstrap(groups, _played_pct, samples=samples, seed=seed),
                quality=bootstrap(groups, _quality, samples=samples, seed=seed),
                overall=bootstrap(groups, _overall, samples=samples, seed=seed),
                metrics={},
            )
        )
    return results


def _quality_estimate(q: np.ndarray, samples: int, seed: int) -> Estimate:
    """Quality of one game rests on its played episodes only: NaN when there are none."""
    played = q[~np.isnan(q)]
    return bootstrap([played], _nanmean, samples=samples, seed=seed)
