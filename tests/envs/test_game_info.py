"""Games describe themselves: levels (one default), reward range per seat, self-play score."""

import pytest

import dialogym
from dialogym.envs import Game, MissingMetric, Outcome, registry, spec
from dialogym.envs.games.reference import ReferenceGame


@pytest.fixture
def scratch_registry(monkeypatch):
    """Games registered in a test leave the registry as it was."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.mark.parametrize("game_id", dialogym.registered())
def test_every_registered_game_describes_its_levels_ranges_and_self_play_score(game_id):
    game_cls = spec(game_id).game_cls
    assert spec(game_id).default_level == game_cls.levels[0]
    assert "level" not in spec(game_id).defaults  # the game class is the one source
    for seat in game_cls.roles:
        lo, hi = game_cls.seat_reward_range(seat)
        assert hi > lo
    assert game_cls.selfplay_description.strip()
    if game_cls.zero_sum:
        assert game_cls.selfplay_score is not Game.selfplay_score


@pytest.mark.parametrize(
    ("game_id", "seat", "expected"),
    [
        ("dialogym/Reference-v0", "speaker", (0.0, 1.0)),
        ("dialogym/Negotiation-v0", "alice", (0.0, 10.0)),
        ("dialogym/Bargaining-v0", "buyer", (0.0, 1.0)),
        ("dialogym/BargainingCritic-v0", "critic", (0.0, 1.0)),
        ("dialogym/ConjectureProver-v0", "prover", (0.0, 1.0)),
        ("dialogym/Debate-v0", "debater_a", (-1.0, 1.0)),
        ("dialogym/Debate-v0", "judge", (0.0, 1.0)),
        ("dialogym/Consultancy-v0", "consultant", (-1.0, 1.0)),
        ("dialogym/Consultancy-v0", "judge", (0.0, 1.0)),
        ("dialogym/PatientTherapist-v0", "therapist", (0.0, 1.0)),
        ("dialogym/PatientTherapistJudged-v0", "judge", (0.0, 1.0)),
    ],
)
def test_the_builtin_reward_ranges(game_id, seat, expected):
    assert spec(game_id).game_cls.seat_reward_range(seat) == expected


def test_the_default_self_play_score_is_the_mean_seat_quality_of_a_cooperative_game():
    class Cooperative(ReferenceGame):
        selfplay_score = Game.selfplay_score

    score = Cooperative().selfplay_score(Outcome(rewards={"speaker": 1.0, "listener": 0.0}))
    assert score == pytest.approx(50.0)


def test_a_self_play_score_reading_a_missing_metric_names_the_metrics_there_are():
    with pytest.raises(MissingMetric, match=r"no metric 'success' \(the outcome reports \['turns'\]\)"):
        ReferenceGame().selfplay_score(Outcome(rewards={}, metrics={"turns": 2.0}))


def test_a_zero_sum_game_keeping_the_mean_over_seats_is_refused(scratch_registry):
    class Duel(ReferenceGame):
        zero_sum = True
        selfplay_score = Game.selfplay_score

    with pytest.raises(TypeError, match="zero_sum but keeps the default selfplay_score.*override selfplay_score"):
        dialogym.register("test/Duel-v0", Duel)


def test_a_zero_sum_game_with_its_own_self_play_score_is_accepted(scratch_registry):
    class Duel(ReferenceGame):
        zero_sum = True

    assert dialogym.register("test/FairDuel-v0", Duel).game_cls is Duel


def test_a_default_level_other_than_the_first_is_refused(scratch_registry):
    with pytest.raises(ValueError, match="put the default level first in levels"):
        dialogym.register("test/Hard-v0", type("Hard", (ReferenceGame,), {}), level="hard")


def test_naming_the_first_level_as_default_is_accepted_and_kept_in_one_place(scratch_registry):
    game_spec = dialogym.register("test/Easy-v0", type("Easy", (ReferenceGame,), {}), level="easy")
    assert game_spec.default_level == "easy" and "level" not in game_spec.defaults


def test_a_reward_range_must_name_every_seat(scratch_registry):
    class Partial(ReferenceGame):
        reward_range = {"speaker": (0.0, 1.0)}

    with pytest.raises(ValueError, match=r"missing \['listener'\]"):
        dialogym.register("test/Partial-v0", Partial)


def test_a_reward_range_must_have_hi_above_lo(scratch_registry):
    class Flat(ReferenceGame):
        reward_range = (1.0, 1.0)

    with pytest.raises(ValueError, match="must have hi > lo"):
        dialogym.register("test/Flat-v0", Flat)
