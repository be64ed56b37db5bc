"""Bargaining over a hidden horizon (dialogym/Bargaining-v1): v0's prices and limits, a turn
limit nobody is told, and scripted sides that cannot be outwaited."""

import numpy as np
import pytest

from dialogym.envs import Match, spec
from dialogym.envs.games.bargaining import (
    HORIZONS,
    BargainingGame,
    HiddenHorizonBargainingGame,
    HiddenHorizonBargainInstance,
)
from dialogym.envs.games.bargaining.players import PANEL, conceding_seller

GAME_ID = "dialogym/Bargaining-v1"
GAME = HiddenHorizonBargainingGame()
LAMP = HiddenHorizonBargainInstance(
    level="easy", item="a lamp", list_price=170, cost=50, budget=150, turn_limit=7, min_turns=6, end_one_in=6
)


def new_match(instance=LAMP):
    return Match(GAME, instance, game_id=GAME_ID)


@pytest.mark.parametrize("level", ["easy", "hard"])
def test_v1_keeps_v0s_item_prices_and_limits_and_hides_a_drawn_turn_limit(level):
    horizon = HORIZONS[level]
    for seed in range(40):
        v1 = GAME.generate_instance(np.random.default_rng(seed), level)
        v0 = BargainingGame().generate_instance(np.random.default_rng(seed), level)
        assert v1.model_dump(exclude={"turn_limit", "min_turns", "end_one_in"}) == v0.model_dump(exclude={"turn_limit"})
        assert horizon.min_turns <= v1.turn_limit <= horizon.max_turns


def test_no_prompt_or_view_tells_the_real_turn_limit():
    short, long = new_match(), new_match(LAMP.model_copy(update={"turn_limit": 20}))
    for reply in ["OFFER: 170", "OFFER: 80", "OFFER: 160", "OFFER: 90", "OFFER: 150", "OFFER: 100"]:
        (seat,) = short.to_act()
        assert short.messages(seat) == long.messages(seat) and short.view(seat) == long.view(seat)
        short.submit(seat, reply)
        long.submit(seat, reply)
    prompt = short.messages("seller")[-1]["content"]
    assert "Turn 7. The talks may end after this turn. Your reply:" in prompt and "last turn" not in prompt
    view = short.view("seller")
    assert "turn_limit" not in view and (view["min_turns"], view["end_one_in"]) == (6, 6)
    short.submit("seller", "OFFER: 140")
    assert short.done and short.outcome.rewards == {"seller": 0.0, "buyer": 0.0}  # the hidden limit, 7, is reached


def test_the_rules_state_the_horizons_law_not_its_length():
    prompt = new_match().messages("seller")[-1]["content"]
    assert "The talks last at least 6 turns in all" in prompt and "a chance of 1 in 6, without warning" in prompt
    assert "turns in all. Without" not in prompt and "Turn 1. Your reply:" in prompt


def test_a_v1_side_holds_its_offer_while_the_other_side_does_not_move_and_a_v0_side_does_not():
    def seller_asks(game, instance):
        match, rng = Match(game, instance, game_id="x"), np.random.default_rng(0)
        asks = []
        for _ in range(3):
            reply = conceding_seller(match.view("seller"), rng)
            asks.append(int(reply.split("\n")[0].removeprefix("OFFER: ")))
            match.submit("seller", reply)
            match.submit("buyer", "OFFER: 1")  # a buyer who never moves
        return asks

    assert seller_asks(GAME, LAMP.model_copy(update={"turn_limit": 20})) == [170, 122, 122]
    v0 = BargainingGame()
    v0_lamp = v0.instance_cls.model_validate(LAMP.model_dump(exclude={"min_turns", "end_one_in"}) | {"turn_limit": 20})
    assert seller_asks(v0, v0_lamp) == [170, 122, 93]


def test_once_the_talks_may_end_a_side_takes_an_offer_worth_the_risk_of_asking_more():
    def seller_reply(min_turns):
        match = new_match(LAMP.model_copy(update={"turn_limit": 20, "min_turns": min_turns}))
        for reply in ["OFFER: 170", "OFFER: 100", "OFFER: 150", "OFFER: 120", "OFFER: 140", "OFFER: 130"]:
            match.submit(match.to_act()[0], reply)
        return conceding_seller(match.view("seller"), np.random.default_rng(0))

    # the seller would ask 136, 86 over its cost; $130 gives 80, at least 5/6 of 86
    assert seller_reply(min_turns=6).startswith("ACCEPT")  # the talks may end after this turn
    assert seller_reply(min_turns=8).startswith("OFFER: 136")  # they go on for sure: it asks again


def test_the_panel_is_registered_apart_on_both_versions():
    for game_id in ("dialogym/Bargaining-v0", GAME_ID):
        players = spec(game_id).players
        assert next(iter(players)) == "conceding"
        assert {name for name in players if name.startswith("panel:")} == set(PANEL) == {"panel:slow", "panel:tit"}
