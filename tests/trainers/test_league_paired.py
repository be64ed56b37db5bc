"""Paired cross-play: every evaluation instance is played once with the learner in each seat,
so seat advantage and instance difficulty cancel within the instance, and intervals resample
instances."""

import json
from collections import Counter

import numpy as np
import pytest

from dialogym.agents.rollout import RolloutEngine
from dialogym.agents.scripted import ScriptedAgent
from dialogym.benchmarks.scores import paired_win_rate, partner_score
from dialogym.trainers.league import League, PairedMatches, eval_instances, eval_seeds, play_paired
from dialogym.trainers.pool import CheckpointPool
from tests.benchmarks.test_bench_scores import episode, selfplay
from tests.trainers.test_league import SMALL, changed

NEGOTIATION, REFERENCE, DEBATE = "dialogym/Negotiation-v0", "dialogym/Reference-v0", "dialogym/Debate-v0"


def twins():
    """Two names for one scripted player: the same policy in every seat."""
    return RolloutEngine({"me": ScriptedAgent(), "twin": ScriptedAgent()})


@pytest.mark.parametrize("game", [NEGOTIATION, REFERENCE])
def test_a_player_against_itself_scores_exactly_one_half_on_every_instance(game):
    matches, episodes = play_paired(twins(), game, "me", "twin", eval_seeds(7, 6))
    assert all(sum(row) == 1.0 for row in matches.scores)  # what one seat wins, the other gives back
    assert matches.mean == 0.5 and matches.win_rate().value == 0.5
    if game == NEGOTIATION:  # a game the first mover can win: not every match is a tie
        assert {score for row in matches.scores for score in row} == {0.0, 0.5, 1.0}


def test_a_checkpoint_against_itself_scores_exactly_one_half(tmp_path):
    """Before its first update the learner is the base, it-0: beside it, in either seat, it
    is the base's own team (the referential game's seats share the reward)."""
    league = League(changed(SMALL, guided=True, max_new_tokens=24), tmp_path)
    league._resume()  # sets the league up: it-0 joins the pool
    matches = league.crossplay("it-0", 8, 10**6)
    assert len(matches.seeds) == 4 and matches.scores == ((0.5, 0.5),) * 4 and matches.mean == 0.5


def test_a_partner_that_aborts_where_the_opponents_own_team_aborted_too_ties():
    mixed = episode(REFERENCE, {"speaker": "a", "listener": "b"}, {"speaker": -1.0, "listener": 0.0}, aborted="speaker")
    same = selfplay(REFERENCE, "b", {"speaker": -1.0, "listener": 0.0}, aborted="speaker")
    other = selfplay(REFERENCE, "b", {"speaker": 0.0, "listener": -1.0}, aborted="listener")
    assert partner_score(mixed, same, "a") == 0.5  # the same failure on both sides
    assert partner_score(mixed, other, "a") == 0.0  # a broke the game where b's team did not


def test_both_seat_orders_of_an_instance_play_the_same_instance():
    seeds = eval_seeds(7, 4)
    matches, episodes = play_paired(twins(), NEGOTIATION, "me", "twin", seeds)
    assert matches.seats == ("alice", "bob") and matches.seeds == tuple(seeds)
    assert [e.seed for e in episodes] == [s for s in seeds for _ in range(2)]
    assert [e.seats["alice"] for e in episodes] == ["me", "twin"] * 4
    pairs = [episodes[i:i + 2] for i in range(0, len(episodes), 2)]
    assert all(a.instance_id == b.instance_id and a.instance == b.instance for a, b in pairs)
    assert len({a.instance_id for a, _ in pairs}) == 4


def test_in_a_game_with_more_seats_the_player_takes_every_seat_of_every_instance():
    matches, episodes = play_paired(twins(), DEBATE, "me", "twin", eval_seeds(7, 2))
    assert matches.seats == ("debater_a", "debater_b", "judge") and [len(row) for row in matches.scores] == [3, 3]
    seats = [next(seat for seat, agent in e.seats.items() if agent == "me") for e in episodes]
    assert seats == ["debater_a", "debater_b", "judge"] * 2
    assert all(list(e.seats.values()).count("twin") == 2 for e in episodes)
    assert len({e.instance_id for e in episodes[:3]}) == 1


def test_a_cooperative_games_opponent_plays_its_own_team_once_per_instance():
    class Counting(ScriptedAgent):
        calls = Counter()

        def act(self, requests):
            for request in requests:
                self.calls[request.seat] += 1
            return super().act(requests)

    engine = RolloutEngine({"me": ScriptedAgent(), "twin": Counting()})
    play_paired(engine, REFERENCE, "me", "twin", eval_seeds(7, 3))
    # beside "me" the twin speaks in 3 matches and listens in 3; its own team adds one of each per instance
    assert Counting.calls == Counter(speaker=6, listener=6)


def test_the_paired_interval_resamples_instances_and_seat_advantage_cancels():
    seat_decides = [(1.0, 0.0)] * 10  # the first seat always wins: against itself, nothing to tell
    estimate = paired_win_rate(seat_decides)
    assert (estimate.value, estimate.lo, estimate.hi, estimate.n) == (0.5, 0.5, 0.5, 10)
    # the same 20 matches resampled one by one would give a wide interval around the same mean
    unpaired = paired_win_rate([[x] for row in seat_decides for x in row])
    assert unpaired.n == 20 and unpaired.hi - unpaired.lo > 0.3
    matches = PairedMatches("b", ("alice", "bob"), (1, 2, 3), ((1.0, 0.5), (0.0, 0.5), (1.0, 1.0)))
    assert matches.win_rate().n == 3 and matches.win_rate().value == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="one score per seat order"):
        paired_win_rate([(1.0, 0.0), (1.0,)])


def test_wins_losses_and_ties_are_counted_per_seat():
    matches = PairedMatches("b", ("alice", "bob"), (1, 2, 3), ((1.0, 0.5), (0.0, 0.5), (1.0, 1.0)))
    assert matches.by_seat() == {"alice": {"wins": 2, "losses": 1, "ties": 0}, "bob": {"wins": 1, "losses": 0, "ties": 2}}
    results = matches.results("it-1", NEGOTIATION, 4)
    assert [(r.seed, r.seat, r.outcome) for r in results[:2]] == [(1, "alice", "win"), (1, "bob", "tie")]
    assert len(results) == 6 and all(r.a == "it-1" and r.b == "b" and r.iteration == 4 for r in results)


@pytest.mark.parametrize(("episodes", "seats", "instances"), [(8, 2, 4), (5, 2, 3), (1, 2, 1), (3, 3, 1), (4, 3, 2)])
def test_evaluation_episodes_round_up_to_whole_instances(episodes, seats, instances):
    assert eval_instances(episodes, seats) == instances


def test_a_league_against_a_scripted_pool_records_wins_losses_and_ties_per_seat(tmp_path):
    config = SMALL.model_copy(update={"iterations": 1, "eval_episodes": 4, "sampler": "fixed:scripted"})
    (line,) = League(config, tmp_path).run()
    results = CheckpointPool(tmp_path / "pool").results()
    assert len(results) == 4 and {r.b for r in results} == {"scripted"}
    # two instances, each in both seats: every seed twice, once per seat
    assert Counter((r.seed, r.seat) for r in results) == {(s, seat): 1 for s in eval_seeds(1, 2) for seat in ("speaker", "listener")}
    stored = [json.loads(x) for x in (tmp_path / "pool" / "matches.jsonl").read_text().splitlines()]
    assert [x["outcome"] for x in stored] == [r.outcome for r in results]
    evaluation = line["evaluation"]["scripted"]
    counted = {seat: {"wins": 0, "losses": 0, "ties": 0} for seat in ("speaker", "listener")}
    for r in results:
        counted[r.seat][{"win": "wins", "loss": "losses", "tie": "ties"}[r.outcome]] += 1
    assert evaluation["by_seat"] == counted and evaluation["matches"] == 4
    assert all(sum(c.values()) == 2 for c in evaluation["by_seat"].values())
    assert evaluation["win_rate"]["n"] == 2 and evaluation["win_rate"]["value"] == line["eval"]["scripted"]
    assert line["eval"]["scripted"] == pytest.approx(np.mean([r.score for r in results]))
    written = json.loads((tmp_path / "league.jsonl").read_text().splitlines()[0])
    assert written["evaluation"] == line["evaluation"]


class Walker(ScriptedAgent):
    """Walks away at its first turn, whatever the instance."""

    def _reply(self, request) -> str:
        return "WALK AWAY"


@pytest.mark.parametrize("opponent", ["fair", "greedy", "panel:firm", "panel:tit"])
def test_against_a_player_that_walks_away_at_once_every_player_scores_exactly_one_half_in_the_zero_sum_view(opponent):
    """Why the league recipe reads its targets from a sampled evaluation: the greedy base walks
    away at once in either seat, and then the instance's outside options decide both of its
    matches, once in each seat, so they cancel, whatever the other player does."""
    engine = RolloutEngine({"walker": Walker(), "other": ScriptedAgent(opponent)})
    matches, episodes = play_paired(engine, "dialogym/Negotiation-v1", "other", "walker", eval_seeds(3, 40),
                                    game_options={"messages": False, "reward_view": "zero_sum"})
    assert all(sum(row) == 1.0 for row in matches.scores) and matches.mean == 0.5
    assert {score for row in matches.scores for score in row} == {0.0, 0.5, 1.0}  # not every match a tie
    assert all(abs(sum(e.rewards.values())) < 1e-9 for e in episodes)
