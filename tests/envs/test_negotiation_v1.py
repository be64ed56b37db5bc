"""Item division without the last-mover ultimatum (dialogym/Negotiation-v1): a hidden horizon,
private outside options, walking away, and scripted players that never take less than no deal."""

import re

import numpy as np
import pytest

from dialogym.agents.guidance import accepts
from dialogym.envs import InvalidMove, Match, draw_instance, spec
from dialogym.envs.games.negotiation import (
    HORIZONS,
    OUTSIDE_OPTIONS,
    NegotiationGame,
    OutsideOptionInstance,
    OutsideOptionNegotiationGame,
    value_of,
)
from dialogym.envs.games.negotiation.players import PANEL, PLAYERS

GAME_ID = "dialogym/Negotiation-v1"
GAME = OutsideOptionNegotiationGame()
INSTANCE = OutsideOptionInstance(
    level="easy",
    counts={"book": 3, "hat": 1, "ball": 2},
    values={"alice": {"book": 2, "hat": 4, "ball": 0}, "bob": {"book": 0, "hat": 2, "ball": 4}},
    outside={"alice": 3, "bob": 4},
    turn_limit=5,
    min_turns=4,
    end_one_in=6,
)


def new_match(instance=INSTANCE, game=GAME):
    return Match(game, instance, game_id=GAME_ID)


def play(match, replies):
    for reply in replies:
        (seat,) = match.to_act()
        assert match.submit(seat, reply).error is None
    return match


# -- instances -------------------------------------------------------------------------------
@pytest.mark.parametrize("level", ["easy", "hard"])
def test_v1_keeps_v0s_pool_and_values_and_adds_outside_options_and_a_hidden_horizon(level):
    horizon, (low, high) = HORIZONS[level], OUTSIDE_OPTIONS
    for seed in range(40):
        v1 = GAME.generate_instance(np.random.default_rng(seed), level)
        v0 = NegotiationGame().generate_instance(np.random.default_rng(seed), level)
        assert (v1.counts, v1.values) == (v0.counts, v0.values)
        assert all(low <= v1.outside[seat] <= high for seat in GAME.roles)
        assert horizon.min_turns <= v1.turn_limit <= horizon.max_turns
        assert (v1.min_turns, v1.end_one_in) == (horizon.min_turns, horizon.end_one_in)


def test_the_talks_end_after_each_turn_from_min_turns_on_with_the_same_chance():
    horizon = HORIZONS["easy"]
    limits = np.array([GAME.generate_instance(np.random.default_rng(seed), "easy").turn_limit for seed in range(3000)])
    for turn in range(horizon.min_turns, horizon.min_turns + 6):  # memoryless: no turn is likelier the last
        reached = limits >= turn
        assert abs((limits[reached] == turn).mean() - 1 / horizon.end_one_in) < 0.04, turn
    assert (limits == horizon.max_turns).mean() < 0.04


def test_an_outside_option_must_lie_within_the_pools_value():
    with pytest.raises(ValueError, match="outside must give each of"):
        INSTANCE.model_validate({**INSTANCE.model_dump(), "outside": {"alice": 11, "bob": 2}})
    with pytest.raises(ValueError, match="end_one_in must be at least 2"):
        INSTANCE.model_validate({**INSTANCE.model_dump(), "end_one_in": 1})


# -- what a seat may know --------------------------------------------------------------------
def test_no_prompt_or_view_tells_the_real_turn_limit():
    replies = ["PROPOSE: book=3 hat=1 ball=0", "PROPOSE: book=0 hat=1 ball=2", "PROPOSE: book=3 hat=0 ball=0"]
    short, long = new_match(), new_match(INSTANCE.model_copy(update={"turn_limit": 20}))
    for reply in replies:
        (seat,) = short.to_act()
        assert short.messages(seat) == long.messages(seat) and short.view(seat) == long.view(seat)
        play(short, [reply])
        play(long, [reply])
    view = short.view("bob")
    assert "turn_limit" not in view and "no_deal_reward" not in view
    assert (view["min_turns"], view["end_one_in"], view["outside_option"]) == (4, 6, 4)
    prompt = short.messages("bob")[-1]["content"]
    assert "Turn 4. The talks may end after this turn. Your reply:" in prompt and "last turn" not in prompt


def test_each_seat_is_told_its_own_outside_option_only():
    alice = new_match().messages("alice")[-1]["content"]
    assert "Your outside option: 3." in alice and "after each turn from the 4th on they end with a chance of 1 in 6" in alice
    match = play(new_match(), ["PROPOSE: book=3 hat=1 ball=0"])
    bob = match.messages("bob")[-1]["content"]
    assert "Your outside option: 4." in bob and "outside option: 3" not in bob
    assert "alice" not in repr({k: v for k, v in match.view("bob").items() if k != "history"})


# -- rules and scoring -----------------------------------------------------------------------
def test_walking_away_ends_the_talks_and_each_side_gets_its_own_outside_option():
    match = play(new_match(), ["PROPOSE: book=3 hat=1 ball=2", "Not with me.\nWALK AWAY"])
    assert match.done and match.outcome.rewards == {"alice": 3.0, "bob": 4.0}
    metrics = match.outcome.metrics
    assert (metrics["agreed"], metrics["walked_away"], metrics["score_alice"], metrics["score_bob"]) == (0.0, 1.0, 3.0, 4.0)
    assert metrics["joint_score"] == 7.0 and "pareto_optimal" not in metrics
    assert match.view("alice")["history"][-1] == {"seat": "bob", "message": "Not with me.", "take": None, "accept": False, "walk_away": True}


def test_the_hidden_limit_ends_the_talks_with_the_outside_options():
    match = play(new_match(), ["PROPOSE: book=3 hat=1 ball=2"] * 5)
    assert match.done and match.outcome.rewards == {"alice": 3.0, "bob": 4.0}
    assert match.outcome.metrics["walked_away"] == 0.0 and match.outcome.metrics["turns"] == 5.0


def test_a_deal_pays_the_value_of_each_share_and_a_zone_of_agreement_is_reported():
    match = play(new_match(), ["PROPOSE: book=3 hat=1 ball=0", "ACCEPT"])
    assert match.outcome.rewards == {"alice": 10.0, "bob": 8.0}
    assert match.outcome.metrics["zone_exists"] == 1.0
    hopeless = INSTANCE.model_copy(update={"outside": {"alice": 10, "bob": 10}})
    assert play(new_match(hopeless), ["WALK AWAY"]).outcome.metrics["zone_exists"] == 0.0


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("WALK AWAY\nPROPOSE: book=1 hat=0 ball=0", "at most one control line (one PROPOSE, ACCEPT or WALK AWAY)"),
        ("WALK AWAY\nwalk away", "at most one control line"),
        ("ACCEPT", "there is no proposal to accept yet"),
    ],
)
def test_walking_away_is_one_control_line_among_the_others(reply, error):
    with pytest.raises(InvalidMove, match=re.escape(error)):
        GAME.parse_move(GAME.initial_state(INSTANCE), "alice", reply)


def test_walk_away_tolerates_case_and_a_full_stop_and_v0_reads_it_as_a_plain_message():
    move = GAME.parse_move(GAME.initial_state(INSTANCE), "alice", "Goodbye.\n  walk away.")
    assert move.walk_away and move.message == "Goodbye."
    v0 = NegotiationGame()
    assert v0.parse_move(v0.initial_state(INSTANCE), "alice", "WALK AWAY").take is None  # just a message there


def test_without_messages_a_walk_away_drops_the_text_beside_it():
    game = OutsideOptionNegotiationGame(messages=False)
    assert game.parse_move(game.initial_state(INSTANCE), "alice", "Bye\nWALK AWAY").message == ""


def test_v0s_no_deal_reward_is_not_an_option_of_v1():
    with pytest.raises(TypeError, match="bad game option"):
        spec(GAME_ID).game(no_deal_reward=1)


# -- move grammar ----------------------------------------------------------------------------
def test_the_grammar_adds_walk_away_and_no_message_line_reads_as_one():
    state = GAME.initial_state(INSTANCE)
    grammar = GAME.move_grammar(state, "alice")
    assert accepts(grammar, "WALK AWAY") and accepts(grammar, "WALK AWAY\nGoodbye.")
    assert accepts(grammar, "PROPOSE: book=3 hat=1 ball=2") and not accepts(grammar, "ACCEPT")
    for bad in ("walk away", " Walk  away.", "hi\nWALK AWAY", "WALK AWAY\nWALK AWAY"):
        assert not accepts(grammar, bad), bad
    assert accepts(grammar, "I will not walk away yet.")
    assert accepts(OutsideOptionNegotiationGame(messages=False).move_grammar(state, "alice"), "WALK AWAY")
    assert not accepts(NegotiationGame().move_grammar(state, "alice"), "WALK AWAY\nGoodbye.")


# -- scripted players ------------------------------------------------------------------------
def test_the_panel_is_registered_apart_on_both_versions():
    assert set(PANEL) == {"panel:firm", "panel:slow", "panel:tit"}
    for game_id in ("dialogym/Negotiation-v0", GAME_ID):
        players = spec(game_id).players
        assert list(players)[:2] == ["greedy", "fair"]  # greedy stays the default
        assert {name for name in players if name.startswith("panel:")} == set(PANEL)


def random_proposer(view, rng):
    take = {item: int(rng.integers(0, n + 1)) for item, n in view["counts"].items()}
    return "PROPOSE: " + " ".join(f"{item}={n}" for item, n in take.items())


@pytest.mark.parametrize("name", [*PLAYERS, *PANEL])
def test_no_scripted_player_accepts_a_share_worth_less_than_its_outside_option(name):
    players = {**PLAYERS, **PANEL}[name]
    accepted = 0
    for seed in range(60):
        match = Match(GAME, draw_instance(GAME, seed), game_id=GAME_ID)
        rng = np.random.default_rng(seed)
        while not match.done:
            (seat,) = match.to_act()
            view = match.view(seat)
            reply = players[seat](view, rng) if seat == "bob" else random_proposer(view, rng)
            if reply.startswith("ACCEPT"):
                accepted += 1
                assert value_of(view["values"], view["offer_to_me"]) >= view["outside_option"]
            match.submit(seat, reply)
        assert match.outcome.rewards["bob"] >= match.instance.outside["bob"]
    assert accepted > 0


def test_fair_agrees_with_itself_and_greedy_still_outscores_fair():
    def mean(alice, bob, key):
        game_players = spec(GAME_ID).players
        scores = []
        for seed in range(60):
            match = Match(GAME, draw_instance(GAME, seed), game_id=GAME_ID)
            rng = np.random.default_rng(seed)
            while not match.done:
                (seat,) = match.to_act()
                match.submit(seat, game_players[alice if seat == "alice" else bob][seat](match.view(seat), rng))
            scores.append(match.outcome.metrics[key])
        return sum(scores) / len(scores)

    assert mean("fair", "fair", "agreed") >= 0.9
    assert mean("greedy", "fair", "score_alice") > mean("greedy", "fair", "score_bob") + 1
