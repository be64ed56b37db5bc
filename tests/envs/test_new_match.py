"""new_match: the one way every front end starts an episode of a registered game."""

import pytest

from dialogym.envs import InstanceSet, Match, draw_instance, new_match, spec
from dialogym.envs.games.reference import ReferenceGame
from dialogym.envs.spaces import MatchFactory

REF = "dialogym/Reference-v0"


def test_a_new_match_draws_the_instance_its_seed_picks_at_the_default_level():
    match = new_match(REF, 5)
    assert isinstance(match, Match)
    assert match.game_id == REF and match.seed == 5 and match.play == 0
    assert match.instance == draw_instance(ReferenceGame(), 5, level=spec(REF).default_level)


def test_level_and_split_choose_what_is_drawn():
    match = new_match(REF, 5, level="hard", split="test")
    assert match.instance == draw_instance(ReferenceGame(), 5, level="hard", split="test")


def test_an_unknown_level_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown level 'expert'; choose one of"):
        new_match(REF, 5, level="expert")


def test_a_given_instance_is_played_and_a_dict_is_validated():
    instance = draw_instance(ReferenceGame(), 9, level="medium")
    assert new_match(REF, 0, instance=instance).instance == instance
    assert new_match(REF, 0, instance=instance.model_dump(mode="json")).instance == instance


def test_an_instances_option_is_indexed_by_the_seed():
    pool = [draw_instance(ReferenceGame(), s) for s in range(3)]
    assert new_match(REF, 4, instances=pool).instance == pool[1]


def test_max_retries_comes_from_the_game_unless_overridden():
    assert new_match(REF, 0).max_retries == ReferenceGame.max_retries
    assert new_match(REF, 0, max_retries=0).max_retries == 0


def test_registered_defaults_reach_the_game_and_the_match(monkeypatch):
    from dialogym.envs import games  # noqa: F401
    from dialogym.envs.games.negotiation import NegotiationGame

    monkeypatch.setitem(spec("dialogym/Negotiation-v0").defaults, "no_deal_reward", 0.5)
    monkeypatch.setitem(spec("dialogym/Negotiation-v0").defaults, "max_retries", 4)
    match = new_match("dialogym/Negotiation-v0", 0)
    assert isinstance(match.game, NegotiationGame) and match.game.no_deal_reward == 0.5
    assert match.max_retries == 4


def test_a_bad_game_option_names_the_game():
    with pytest.raises(TypeError, match="dialogym/Reference-v0: bad game option"):
        new_match(REF, 0, colour="red")


def test_the_adapters_factory_builds_the_same_match_as_new_match():
    factory = MatchFactory(REF, level="medium", max_retries=1)
    built, direct = factory.new(3), new_match(REF, 3, level="medium", max_retries=1)
    assert built.instance == direct.instance and built.max_retries == direct.max_retries == 1


def test_the_adapters_factory_keeps_its_instance_set_and_reset_options():
    instance_set = InstanceSet(game=REF, name="x", version="v0", level="easy", split="test", seed=0,
                               instances=[draw_instance(ReferenceGame(), s).model_dump(mode="json") for s in range(2)])
    factory = MatchFactory(REF, instances=instance_set)
    assert factory.new(3).instance.model_dump(mode="json") == instance_set.instances[1]
    chosen = draw_instance(ReferenceGame(), 8)
    assert factory.new(0, {"instance": chosen.model_dump(mode="json")}).instance == chosen
    assert MatchFactory(REF).new(2, {"level": "hard"}).instance.level == "hard"
    with pytest.raises(ValueError, match="unknown level"):
        MatchFactory(REF, level="expert")
