"""The zero-sum view of the general-sum negotiation games (game option ``reward_view``), and
``win_score``, the league's notion of a win that agrees with it."""

import numpy as np
import pytest

from dialogym.envs import Match, Outcome, draw_instance, spec
from dialogym.envs.games.negotiation import margin, win_score

TWO_SIDED = ("dialogym/Negotiation-v0", "dialogym/Negotiation-v1", "dialogym/Bargaining-v0", "dialogym/Bargaining-v1")


def scripted_outcomes(game_id, n=30, **options):
    game_spec = spec(game_id)
    game = game_spec.game(**options)
    players = game_spec.players[next(iter(game_spec.players))]
    outcomes = []
    for seed in range(n):
        match, rng = Match(game, draw_instance(game, seed), game_id=game_id), np.random.default_rng(seed)
        while not match.done:
            (seat,) = match.to_act()
            match.submit(seat, players[seat](match.view(seat), rng))
        outcomes.append(match.outcome)
    return outcomes


@pytest.mark.parametrize("game_id", TWO_SIDED)
def test_the_zero_sum_view_rewards_each_side_its_score_minus_the_others_and_keeps_the_scores(game_id):
    general, zero_sum = scripted_outcomes(game_id), scripted_outcomes(game_id, reward_view="zero_sum")
    seats = spec(game_id).game_cls.roles
    for plain, viewed in zip(general, zero_sum, strict=True):
        assert viewed.metrics == plain.metrics  # the same play; the scores stay in the metrics
        a, b = seats
        assert viewed.rewards[a] == -viewed.rewards[b] == plain.metrics[f"score_{a}"] - plain.metrics[f"score_{b}"]
        for seat in seats:
            assert viewed.rewards[seat] == margin(plain, seat) == margin(viewed, seat)
            assert win_score(viewed, seat) == (1.0 if viewed.rewards[seat] > 0 else 0.5 if viewed.rewards[seat] == 0 else 0.0)
    assert any(o.rewards[seats[0]] != 0 for o in zero_sum)


def test_without_a_deal_in_v0_the_margin_is_zero_whatever_no_deal_reward_is():
    game = spec("dialogym/Negotiation-v0").game(no_deal_reward=-1, reward_view="zero_sum")
    match = Match(game, draw_instance(game, 0), game_id="dialogym/Negotiation-v0")
    while not match.done:
        match.submit(match.to_act()[0], "No.")
    assert match.outcome.rewards == {"alice": 0.0, "bob": 0.0}


def test_the_critic_earns_the_coached_sides_margin():
    outcome = scripted_outcomes("dialogym/BargainingCritic-v0", n=3, reward_view="zero_sum", coached="buyer")[0]
    assert outcome.rewards["critic"] == outcome.rewards["buyer"] == margin(outcome, "buyer")


def test_win_score_is_one_half_or_zero_by_who_scored_more():
    outcome = Outcome(rewards={}, metrics={"score_alice": 6.0, "score_bob": 4.0, "joint_score": 10.0})
    assert (win_score(outcome, "alice"), win_score(outcome, "bob")) == (1.0, 0.0)
    assert win_score(Outcome(rewards={}, metrics={"score_seller": 0.5, "score_buyer": 0.5}), "buyer") == 0.5
    with pytest.raises(ValueError, match="margin needs the scores of 'carol'"):
        margin(outcome, "carol")


@pytest.mark.parametrize("game_id", [*TWO_SIDED, "dialogym/BargainingCritic-v0"])
def test_reward_view_is_a_registered_game_option_and_a_bad_value_is_refused(game_id):
    assert spec(game_id).game().reward_view == "general"
    with pytest.raises(ValueError, match="reward_view must be one of \\['general', 'zero_sum'\\]"):
        spec(game_id).game(reward_view="zero-sum")
