"""Kuhn Poker (dialogym/KuhnPoker-v0): bets move chips, the first move alternates, the
reward is the zero-sum chip margin, and the scripted ``nash`` player is an equilibrium."""

import itertools

import numpy as np
import pytest

from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent
from dialogym.envs import InvalidMove
from dialogym.envs.games.kuhn import KuhnInstance, KuhnPokerGame
from dialogym.envs.games.kuhn.players import PLAYERS, nash

GAME = "dialogym/KuhnPoker-v0"


def play(game: KuhnPokerGame, deals: list[tuple[int, int]], moves: list[str]):
    state = game.initial_state(KuhnInstance(level="default", deals=deals + [(0, 1)] * (16 - len(deals))))
    for text in moves:
        (seat,) = game.to_move(state)
        game.apply(state, {seat: game.parse_move(state, seat, text)})
    return state


@pytest.mark.parametrize(("moves", "chips_0"), [
    (["[check]", "[check]"], 1),  # K against Q at showdown: the pot of 2, 1 net
    (["[bet]", "[call]"], 2),  # a called bet: the pot of 4, 2 net
    (["[bet]", "[fold]"], 1),  # the bettor wins the antes unseen
    (["[check]", "[bet]", "[fold]"], -1),  # player_1 bets after a check, player_0 folds the King
    (["[check]", "[bet]", "[call]"], 2),
])
def test_bets_move_chips_and_the_higher_card_wins_the_showdown(moves, chips_0):
    game = KuhnPokerGame(hands=1)
    state = play(game, [(2, 1)], moves)
    assert game.is_terminal(state) and state.chips == {"player_0": chips_0, "player_1": -chips_0}
    outcome = game.score(state)
    assert outcome.rewards == {"player_0": chips_0 / 2, "player_1": -chips_0 / 2}  # over the most: 2 chips a hand
    assert outcome.metrics["win_player_0"] == float(chips_0 > 0) and outcome.metrics["draw"] == 0.0


def test_the_first_move_alternates_and_equal_chips_are_a_draw():
    game = KuhnPokerGame(hands=2)
    state = game.initial_state(game.generate_instance(np.random.default_rng(0), "default"))
    assert game.to_move(state) == ["player_0"]
    state = play(game, [(2, 1), (2, 1)], ["[check]", "[check]"])
    assert game.to_move(state) == ["player_1"]  # hand 2: player_1 acts first
    game.apply(state, {"player_1": game.parse_move(state, "player_1", "[bet]")})
    game.apply(state, {"player_0": game.parse_move(state, "player_0", "[fold]")})  # +1 then -1
    outcome = game.score(state)
    assert outcome.metrics["draw"] == 1.0 and outcome.rewards == {"player_0": 0.0, "player_1": 0.0}
    assert outcome.metrics["bets_player_1"] == 1.0 and outcome.metrics["folds_player_0"] == 1.0


def test_a_move_that_is_not_open_is_reprompted_with_the_open_ones():
    game = KuhnPokerGame(hands=1)
    state = play(game, [(0, 2)], ["[bet]"])
    with pytest.raises(InvalidMove, match=r"\[check\] is not open now \(there is a bet to answer\); reply \[call\] or \[fold\]"):
        game.parse_move(state, "player_1", "[check]")
    with pytest.raises(InvalidMove, match="one move"):
        game.parse_move(state, "player_1", "I raise you ten")
    assert game.parse_move(state, "player_1", "  CALL\nbecause I hold the King").action == "call"
    assert game.move_grammar(state, "player_1") == 'start: ("[call]" | "[fold]")'


def test_the_prompt_tells_a_seat_its_card_and_the_other_seats_move_but_never_the_others_card():
    game = KuhnPokerGame(hands=2)
    state = play(game, [(2, 0), (1, 2)], ["[bet]"])
    prompt = game.prompt(state, "player_1")
    assert "Your card: J." in prompt and "Opponent: [bet]." in prompt and "Your moves: [call], [fold]." in prompt
    assert "K" not in prompt.split("Rules:")[1].split("(J lowest, K highest)")[1]  # the opponent's King is not told
    game.apply(state, {"player_1": game.parse_move(state, "player_1", "[fold]")})
    after = game.prompt(state, "player_1")  # hand 2: news of the fold, the new card, no rules again
    assert "Rules:" not in after and "you folded (-1)" in after and "Your card: K." in after


def test_hands_is_checked():
    assert KuhnPokerGame(hands=6).hands == 6
    for bad in (0, 17, True, "4"):
        with pytest.raises(ValueError, match="hands="):
            KuhnPokerGame(hands=bad)


def test_no_scripted_player_wins_chips_from_the_nash_player_in_expectation():
    """The nash player's exact expected chips against each deterministic opponent policy
    over every deal and both seats is >= 0 (the game's value with alternating first moves):
    enumerated, not sampled."""
    game = KuhnPokerGame(hands=2)

    def expected(policy_0, policy_1) -> float:
        """Exact expected chips of player_0 over both deals' every card pair, by enumerating nash's mixed choices."""
        total = 0.0
        deals = [(a, b) for a in range(3) for b in range(3) if a != b]
        for d1, d2 in itertools.product(deals, repeat=2):
            total += _value(game, game.initial_state(KuhnInstance(level="default", deals=[d1, d2] + [(0, 1)] * 14)),
                            {"player_0": policy_0, "player_1": policy_1})
        return total / len(deals) ** 2

    for name in ("simple", "aggressive", "passive", "random"):
        other = PLAYERS[name]["player_0"]
        assert expected(nash, other) >= -0.01 and expected(other, nash) <= 0.01, name  # the grid rounds 1/6 by 1e-3


def _value(game, state, policies) -> float:
    """player_0's expected chips from ``state``: a policy's randomness enumerated through a stub rng."""
    import copy

    if game.is_terminal(state):
        return float(state.chips["player_0"])
    (seat,) = game.to_move(state)
    view = game.view(state, seat)
    value = 0.0
    for move, p in _distribution(policies[seat], view).items():
        if p == 0:
            continue
        child = copy.deepcopy(state)
        game.apply(child, {seat: game.parse_move(child, seat, move)})
        value += p * _value(game, child, policies)
    return value


def _distribution(policy, view) -> dict[str, float]:
    """A policy's move probabilities: it is called with an rng stub returning each threshold's two sides."""
    class Fixed:
        def __init__(self, u: float) -> None:
            self.u = u

        def random(self) -> float:
            return self.u

        def integers(self, n: int) -> int:
            return min(int(self.u * n), n - 1)

    grid = np.linspace(0.0005, 0.9995, 1000)  # the policies' thresholds are multiples of 1/6 and 1/3
    moves = [policy(view, Fixed(u)) for u in grid]
    return {m: moves.count(m) / len(moves) for m in set(moves)}


def test_the_nash_player_beats_the_calling_station_the_base_model_plays_like():
    engine = RolloutEngine({n: load_agent(f"scripted:{n}") for n in ("nash", "passive")})
    specs = [EpisodeSpec(game=GAME, seed=seed, seats=dict(zip(("player_0", "player_1"), order, strict=True)))
             for seed in range(60) for order in (("nash", "passive"), ("passive", "nash"))]
    chips = [e.metrics[f"chips_{next(s for s, a in e.seats.items() if a == 'nash')}"] for e in engine.run(specs)]
    assert np.mean(chips) > 0.3  # about +0.18 a hand, 4 hands


def test_each_hand_is_a_round_whose_chips_the_episode_records():
    from dialogym.envs import new_match

    match = new_match(GAME, 3, split="test", hands=2)
    for move in ["[bet]", "[call]", "[check]", "[bet]", "[fold]"]:
        match.submit(match.to_act()[0], move)
    episode = match.episode()
    assert [t.round for t in episode.turns] == [0, 0, 1, 1, 1]
    assert len(episode.round_rewards) == 2 and episode.round_rewards[1] == {"player_0": 0.25, "player_1": -0.25}  # a fold: 1 chip of 4
    for seat in ("player_0", "player_1"):
        assert sum(r[seat] for r in episode.round_rewards) == pytest.approx(episode.rewards[seat])
    plain = new_match("dialogym/Negotiation-v1", 0)  # a game without rounds records none
    plain.submit(plain.to_act()[0], "WALK AWAY")
    assert plain.episode().round_rewards == [] and plain.turns[0].round is None
