"""Score formulas of the benchmark, checked on hand-built episodes with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dialogym.benchmarks.ratings import fit_ratings, openskill_ratings, win_matrix, win_matrix_intervals
from dialogym.benchmarks.scores import (
    aggregate,
    bootstrap,
    match_score,
    model_quality,
    partner_score,
    quality,
    reward_range,
    score_rows,
)
from dialogym.envs import Episode

REF = "dialogym/Reference-v0"
NEG = "dialogym/Negotiation-v0"
DEBATE = "dialogym/Debate-v0"


def episode(
    game: str, seats: dict[str, str], rewards: dict[str, float], *, aborted: str | None = None, n: int = 0, **metrics: float
) -> Episode:
    return Episode(
        id=f"{game}-{n}-{sorted(seats.items())}",
        game=game,
        instance_id=f"inst{n}",
        instance_version="v0",
        instance={},
        level="easy",
        seed=n,
        seats=seats,
        rewards=rewards,
        metrics=metrics,
        status="aborted" if aborted else "completed",
        aborted_by=aborted,
        abort_reason=f"{aborted}: invalid move" if aborted else None,
    )


def selfplay(game: str, model: str, rewards: dict[str, float], **kw) -> Episode:
    return episode(game, {seat: model for seat in rewards}, rewards, **kw)


def by(scores, game, model):
    return next(s for s in scores if s.game == game and s.model == model)


def test_quality_maps_the_seat_reward_from_the_game_range_onto_0_to_100():
    e = episode(NEG, {"alice": "a", "bob": "b"}, {"alice": 7.0, "bob": 3.0})
    assert reward_range(NEG, "alice") == (0.0, 10.0)
    assert quality(e, "alice") == pytest.approx(70.0)
    assert quality(e, "bob") == pytest.approx(30.0)


def test_quality_uses_per_seat_ranges_where_seats_differ():
    e = episode(DEBATE, {"debater_a": "a", "debater_b": "a", "judge": "j"}, {"debater_a": 1.0, "debater_b": -1.0, "judge": 1.0})
    assert quality(e, "debater_a") == 100.0
    assert quality(e, "debater_b") == 0.0
    assert quality(e, "judge") == 100.0
    # A model in two seats scores the mean of its seats.
    assert model_quality(e, "a") == pytest.approx(50.0)


def test_quality_is_clipped_to_0_100_and_the_model_that_aborted_an_episode_loses_it():
    e = episode(REF, {"speaker": "a", "listener": "b"}, {"speaker": -1.0, "listener": 0.0}, aborted="speaker")
    assert quality(e, "speaker") == 0.0
    assert quality(e, "listener") == 0.0
    assert match_score(e, "a", "b") == 0.0
    assert match_score(e, "b", "a") == 1.0


def test_an_aborting_debater_loses_even_though_its_partner_seat_keeps_a_middling_reward():
    # b's debater_a aborted: rewards -1 (offender), 0, 0; normalised b = mean(0, 50) > a's judge 0
    seats = {"debater_a": "b", "debater_b": "b", "judge": "a"}
    e = episode(DEBATE, seats, {"debater_a": -1.0, "debater_b": 0.0, "judge": 0.0}, aborted="debater_a")
    assert match_score(e, "a", "b") == 1.0


def test_a_completed_episode_is_won_on_normalised_reward_across_seats_of_different_scales():
    seats = {"debater_a": "a", "debater_b": "b", "judge": "b"}
    # a's debater won (100); b: losing debater 0 and a correct judge 100 -> 50
    e = episode(DEBATE, seats, {"debater_a": 1.0, "debater_b": -1.0, "judge": 1.0})
    assert match_score(e, "a", "b") == 1.0


def test_equal_rewards_are_a_tie_worth_half():
    e = episode(REF, {"speaker": "a", "listener": "b"}, {"speaker": 1.0, "listener": 1.0})
    assert match_score(e, "a", "b") == 0.5


@pytest.mark.parametrize(("with_a", "alone", "expected"), [(1.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 1.0, 0.5), (0.0, 0.0, 0.5)])
def test_in_a_cooperative_game_the_better_partner_wins(with_a, alone, expected):
    """The seats share the reward, so one episode always ties; a's team (a beside b) is
    compared with b's own team on the same instance."""
    e = episode(REF, {"speaker": "b", "listener": "a"}, {"speaker": with_a, "listener": with_a})
    b_alone = selfplay(REF, "b", {"speaker": alone, "listener": alone})
    assert match_score(e, "a", "b") == 0.5
    assert partner_score(e, b_alone, "a") == expected


def test_a_partner_that_aborts_loses():
    e = episode(REF, {"speaker": "b", "listener": "a"}, {"speaker": 0.0, "listener": -1.0}, aborted="listener")
    assert partner_score(e, selfplay(REF, "b", {"speaker": 0.0, "listener": 0.0}), "a") == 0.0


def test_played_quality_and_overall_follow_the_clemscore_formulas():
    # 4 episodes of Reference for model m: 3 played (success 1, 1, 0), 1 aborted.
    episodes = [
        selfplay(REF, "m", {"speaker": 1.0, "listener": 1.0}, n=0, success=1.0),
        selfplay(REF, "m", {"speaker": 1.0, "listener": 1.0}, n=1, success=1.0),
        selfplay(REF, "m", {"speaker": 0.0, "listener": 0.0}, n=2, success=0.0),
        selfplay(REF, "m", {"speaker": -1.0, "listener": 0.0}, n=3, aborted="speaker"),
    ]
    s = by(aggregate(score_rows(episodes), samples=200), REF, "m")
    assert s.played.value == pytest.approx(75.0)
    assert s.quality.value == pytest.approx(200 / 3)  # mean over played episodes only
    assert s.overall.value == pytest.approx(75.0 * (200 / 3) / 100)  # = 50
    assert s.metrics["success"].value == pytest.approx(2 / 3)
    assert (s.episodes, s.played_episodes) == (4, 3)
    assert (s.played.n, s.quality.n, s.overall.n, s.metrics["success"].n) == (4, 3, 4, 3)


def test_scores_across_games_are_macro_means_and_a_game_never_played_counts_quality_0():
    episodes = [
        selfplay(REF, "m", {"speaker": 1.0, "listener": 1.0}, n=0, success=1.0),
        selfplay(REF, "m", {"speaker": 1.0, "listener": 1.0}, n=1, success=1.0),  # Reference: 100% played, quality 100
        selfplay(NEG, "m", {"alice": -1.0, "bob": 0.0}, n=0, aborted="alice"),
        selfplay(NEG, "m", {"alice": 5.0, "bob": 5.0}, n=1, joint_score=10.0),  # Negotiation: 50% played, quality 50
    ]
    scores = aggregate(score_rows(episodes), samples=200)
    overall = by(scores, "all", "m")
    assert overall.played.value == pytest.approx((100 + 50) / 2)
    assert overall.quality.value == pytest.approx((100 + 50) / 2)
    assert overall.overall.value == pytest.approx(75 * 75 / 100)

    never = [
        selfplay(REF, "m", {"speaker": 1.0, "listener": 1.0}, success=1.0),
        selfplay(NEG, "m", {"alice": -1.0, "bob": 0.0}, aborted="alice"),
    ]
    s = aggregate(score_rows(never), samples=50)
    assert math.isnan(by(s, NEG, "m").quality.value)
    assert by(s, NEG, "m").overall.value == 0.0
    assert by(s, "all", "m").quality.value == pytest.approx(50.0)


BARGAIN = "dialogym/Bargaining-v0"
CONJ = "dialogym/ConjectureProver-v0"
CONSULT = "dialogym/Consultancy-v0"
THERAPY = "dialogym/PatientTherapist-v0"
DEBATERS = {"debater_a": 1.0, "debater_b": -1.0}


@pytest.mark.parametrize(
    ("game", "rewards", "metrics", "expected"),
    [
        # zero-sum games: the mean over seats would be 50 (Bargaining) or 66.7 (Debate) every time
        (BARGAIN, {"seller": 0.7, "buyer": 0.3}, {"agreed": 1.0, "zone_exists": 1.0}, 100.0),
        (BARGAIN, {"seller": 0.0, "buyer": 0.0}, {"agreed": 0.0, "zone_exists": 1.0}, 0.0),
        (BARGAIN, {"seller": 0.0, "buyer": 0.0}, {"agreed": 0.0, "zone_exists": 0.0}, 100.0),  # no deal was the right call
        (DEBATE, {**DEBATERS, "judge": 1.0}, {"judge_accuracy": 1.0}, 100.0),
        (DEBATE, {**DEBATERS, "judge": 0.0}, {"judge_accuracy": 0.0}, 0.0),
        (CONSULT, {"consultant": 1.0, "judge": 0.0}, {"judge_accuracy": 0.0}, 0.0),
        (CONJ, {"conjecturer": 0.0, "prover": 1.0}, {"proved": 1.0, "copied_seed": 0.0}, 100.0),
        (CONJ, {"conjecturer": 0.0, "prover": 1.0}, {"proved": 1.0, "copied_seed": 1.0}, 0.0),  # a copied seed is no skill
        (CONJ, {"conjecturer": 0.1, "prover": 0.0}, {"proved": 0.0, "copied_seed": 0.0}, 0.0),
        (NEG, {"alice": 6.0, "bob": 8.0}, {"joint_score": 14.0}, 70.0),
        (THERAPY, {"therapist": 0.8, "patient": 0.1}, {"diagnosis_correct": 1.0}, 80.0),
        (REF, {"speaker": 1.0, "listener": 1.0}, {"success": 1.0}, 100.0),
    ],
)
def test_self_play_quality_is_the_games_skill_outcome_not_the_mean_over_seats(game, rewards, metrics, expected):
    e = selfplay(game, "m", rewards, **metrics)
    assert model_quality(e, "m") == pytest.approx(expected)
    assert score_rows([e])[0]["quality"] == pytest.approx(expected)


def test_self_play_scores_differ_between_a_good_and_a_bad_zero_sum_player():
    good = [selfplay(BARGAIN, "good", {"seller": 0.5, "buyer": 0.5}, n=i, agreed=1.0, zone_exists=1.0) for i in range(4)]
    bad = [selfplay(BARGAIN, "bad", {"seller": 0.0, "buyer": 0.0}, n=i, agreed=0.0, zone_exists=1.0) for i in range(4)]
    scores = aggregate(score_rows(good + bad), samples=50)
    assert by(scores, BARGAIN, "good").quality.value == 100.0
    assert by(scores, BARGAIN, "bad").quality.value == 0.0


def test_in_cross_play_a_model_is_scored_on_its_own_seats_only():
    e = episode(BARGAIN, {"seller": "a", "buyer": "b"}, {"seller": 0.7, "buyer": 0.3}, agreed=1.0, zone_exists=1.0)
    assert model_quality(e, "a") == pytest.approx(70.0)
    assert model_quality(e, "b") == pytest.approx(30.0)


def test_a_game_without_a_self_play_score_uses_the_mean_over_its_seats():
    e = selfplay("someone/Cooperate-v0", "m", {"x": 1.0, "y": 0.0})
    assert model_quality(e, "m") == pytest.approx(50.0)


def test_a_missing_self_play_metric_is_a_clear_error():
    e = selfplay(DEBATE, "m", {**DEBATERS, "judge": 1.0}, accuracy=1.0)
    with pytest.raises(ValueError, match="no metric 'judge_accuracy'.*fix the game's selfplay_score"):
        model_quality(e, "m")


def test_every_registered_game_gives_its_scripted_self_play_a_score_in_0_100(tmp_path):
    from dialogym.benchmarks.runner import BenchConfig, run_bench
    from dialogym.envs import registered, spec

    # a game whose only baseline is a random player (most of TextArena's) may forfeit: not a baseline to score
    baselines = [game for game in registered() if next(iter(spec(game).players), None) != "random"]
    _, episodes, _ = run_bench(BenchConfig(games=baselines, models=["scripted"], episodes=2), tmp_path)
    for row in score_rows(episodes):
        assert row["played"] and 0.0 <= row["quality"] <= 100.0, row


def test_cross_play_rows_credit_each_model_with_its_own_seats_and_result():
    e = episode(NEG, {"alice": "a", "bob": "b"}, {"alice": 6.0, "bob": 4.0})
    rows = {r["model"]: r for r in score_rows([e])}
    assert rows["a"]["quality"] == pytest.approx(60.0)
    assert rows["b"]["quality"] == pytest.approx(40.0)
    assert (rows["a"]["result"], rows["b"]["result"]) == (1.0, 0.0)
    assert rows["a"]["seats"] == "alice" and rows["a"]["opponents"] == "b"


def test_bootstrap_interval_contains_the_value_is_seeded_and_collapses_on_constant_data():
    data = np.array([0.0, 100.0] * 10)
    first = bootstrap([data], lambda g: float(np.mean(g[0])), seed=3)
    again = bootstrap([data], lambda g: float(np.mean(g[0])), seed=3)
    assert first == again
    assert first.lo < first.value == 50.0 < first.hi
    # the standard error of a mean of 20 coin flips (x100) is about 11: the interval is about +-22
    assert 10 < first.hi - first.value < 35
    constant = bootstrap([np.full(5, 7.0)], lambda g: float(np.mean(g[0])))
    assert (constant.lo, constant.value, constant.hi, constant.n) == (7.0, 7.0, 7.0, 5)


def test_bradley_terry_recovers_the_elo_gap_of_a_60_40_record():
    ratings = fit_ratings([("a", "b", 1.0)] * 60 + [("a", "b", 0.0)] * 40, prior=0.0)
    gap = ratings["a"].mu - ratings["b"].mu
    assert gap == pytest.approx(400 * math.log10(1.5), rel=1e-4)
    assert ratings["a"].lo < ratings["a"].mu < ratings["a"].hi
    assert ratings["a"].matches == 100


def test_ties_count_half_so_all_draws_give_equal_ratings():
    ratings = fit_ratings([("a", "b", 0.5)] * 10 + [("b", "c", 0.5)] * 10)
    assert {round(r.mu, 6) for r in ratings.values()} == {1000.0}


def test_an_unbeaten_model_gets_a_finite_rating_with_a_wide_interval():
    ratings = fit_ratings([("a", "b", 1.0)] * 12)
    assert math.isfinite(ratings["a"].mu) and ratings["a"].mu > ratings["b"].mu
    assert ratings["a"].hi - ratings["a"].lo > 100


def test_ratings_are_ordered_by_strength_in_a_transitive_league():
    matches = [("a", "b", 1.0)] * 7 + [("a", "b", 0.0)] * 3 + [("b", "c", 1.0)] * 7 + [("b", "c", 0.0)] * 3
    ratings = fit_ratings(matches)
    assert ratings["a"].mu > ratings["b"].mu > ratings["c"].mu


def test_a_match_score_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="score must be in"):
        fit_ratings([("a", "b", 2.0)])


def test_win_matrix_holds_mean_scores_and_counts_both_ways():
    names, rate, n = win_matrix([("a", "b", 1.0), ("a", "b", 0.5), ("b", "a", 1.0)])
    assert names == ["a", "b"]
    assert rate[0, 1] == pytest.approx(1.5 / 3)
    assert rate[1, 0] == pytest.approx(1.5 / 3)
    assert n[0, 1] == 3


TRANSITIVE = [("a", "b", 1.0)] * 7 + [("a", "b", 0.0)] * 3 + [("b", "c", 1.0)] * 7 + [("b", "c", 0.0)] * 3


def test_openskill_ratings_are_the_openskill_librarys_bradley_terry_update():
    from openskill.models import BradleyTerryFull

    model = BradleyTerryFull()
    [[winner], [loser]] = model.rate([[model.rating()], [model.rating()]], ranks=[0, 1])
    ratings = openskill_ratings([("a", "b", 1.0)])
    assert (ratings["a"].mu, ratings["a"].sigma) == pytest.approx((winner.mu, winner.sigma))
    assert (ratings["b"].mu, ratings["b"].sigma) == pytest.approx((loser.mu, loser.sigma))
    assert ratings["a"].lo == pytest.approx(winner.mu - 1.96 * winner.sigma)


def test_openskill_ratings_order_a_transitive_league_count_draws_as_equal_and_are_seeded():
    ratings = openskill_ratings(TRANSITIVE, seed=3)
    assert ratings["a"].mu > ratings["b"].mu > ratings["c"].mu
    assert all(r.lo < r.mu < r.hi for r in ratings.values())
    assert ratings["b"].matches == 20
    assert openskill_ratings(TRANSITIVE, seed=3) == ratings
    draws = openskill_ratings([("a", "b", 0.5)] * 10)
    assert draws["a"].mu == pytest.approx(draws["b"].mu)


def test_win_matrix_intervals_are_bootstrap_percentiles_of_each_pairs_matches():
    matches = [("a", "b", 1.0)] * 6 + [("a", "b", 0.0)] * 4 + [("a", "c", 1.0)] * 5
    names, rate, _ = win_matrix(matches)
    _, lo, hi = win_matrix_intervals(matches, samples=500, seed=1)
    a, b, c = (names.index(x) for x in "abc")
    assert 0.0 <= lo[a, b] < rate[a, b] == 0.6 < hi[a, b] <= 1.0
    assert lo[b, a] == pytest.approx(1 - hi[a, b]) and hi[b, a] == pytest.approx(1 - lo[a, b])
    assert (lo[a, c], hi[a, c]) == (1.0, 1.0)  # every match won: nothing to resample
    assert np.isnan(lo[b, c]) and np.isnan(hi[b, c])  # never met
