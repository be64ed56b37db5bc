"""Golden fingerprints: the same seed gives the same instances on any machine.

Each pin is (instance version, fingerprint of the first 5 test-split instances at seed 0).
If a game's generator changes on purpose, bump the game's ``instance_version`` and update
its pins here; a fingerprint that changes without a version bump is a reproducibility bug.
"""

import json

import pytest

import dialogym
from dialogym.envs import generate_instance_set, spec

PINS: dict[tuple[str, str], tuple[str, str]] = {
    ("dialogym/Bargaining-v0", "easy"): ("v0", "951cdf377b87"),
    ("dialogym/Bargaining-v0", "hard"): ("v0", "5d7b4946d091"),
    ("dialogym/Bargaining-v1", "easy"): ("v1", "cf9bc4bee877"),
    ("dialogym/Bargaining-v1", "hard"): ("v1", "6dc2fe9c8576"),
    ("dialogym/BargainingCritic-v0", "easy"): ("v0", "951cdf377b87"),
    ("dialogym/BargainingCritic-v0", "hard"): ("v0", "5d7b4946d091"),
    ("dialogym/ConjectureProver-v0", "easy"): ("v0", "22c024118a1d"),
    ("dialogym/ConjectureProver-v0", "medium"): ("v0", "aee6f8713241"),
    ("dialogym/ConjectureProver-v0", "hard"): ("v0", "809005f9e8d7"),
    ("dialogym/Consultancy-v0", "easy"): ("v1", "31d38a7d9aba"),
    ("dialogym/Consultancy-v0", "medium"): ("v1", "0ffd232ca8f3"),
    ("dialogym/Consultancy-v0", "hard"): ("v1", "0b2345072a02"),
    ("dialogym/Debate-v0", "easy"): ("v1", "31d38a7d9aba"),
    ("dialogym/Debate-v0", "medium"): ("v1", "0ffd232ca8f3"),
    ("dialogym/Debate-v0", "hard"): ("v1", "0b2345072a02"),
    ("dialogym/KuhnPoker-v0", "default"): ("v0", "fcc334319b3a"),
    ("dialogym/Negotiation-v0", "easy"): ("v0", "f121c450913f"),
    ("dialogym/Negotiation-v0", "hard"): ("v0", "497613924e31"),
    ("dialogym/Negotiation-v1", "easy"): ("v1", "4bf35df909c2"),
    ("dialogym/Negotiation-v1", "hard"): ("v1", "a6795dd58e43"),
    ("dialogym/PatientTherapist-v0", "easy"): ("v1", "b8f7d9835aca"),
    ("dialogym/PatientTherapist-v0", "hard"): ("v1", "bdab9baf6a97"),
    ("dialogym/PatientTherapistJudged-v0", "easy"): ("v1", "b8f7d9835aca"),
    ("dialogym/PatientTherapistJudged-v0", "hard"): ("v1", "bdab9baf6a97"),
    ("dialogym/Reference-v0", "easy"): ("v0", "4b3de8c104b8"),
    ("dialogym/Reference-v0", "medium"): ("v0", "1cdf781996b8"),
    ("dialogym/Reference-v0", "hard"): ("v0", "9e0342750e73"),
}


def builtin_levels() -> set[tuple[str, str]]:
    return {
        (game_id, level)
        for game_id in dialogym.registered()
        if game_id.startswith("dialogym/")  # tests register variants of built-in games too
        if spec(game_id).game_cls.__module__.startswith("dialogym.envs.games.")
        for level in spec(game_id).game_cls.levels
    }


def test_every_builtin_game_and_level_is_pinned():
    assert builtin_levels() == set(PINS)


@pytest.mark.parametrize("game_id, level", sorted(PINS))
def test_the_first_test_instances_at_seed_0_match_their_pinned_fingerprint(game_id, level):
    version, fingerprint = PINS[game_id, level]
    instances = generate_instance_set(game_id, 5, seed=0, level=level, split="test")
    assert (instances.version, instances.fingerprint) == (version, fingerprint), (
        f"{game_id} {level}: instances changed; if on purpose, bump the game's instance_version and update PINS"
    )


def test_a_small_instance_space_is_an_error_unless_repeats_are_allowed():
    from tests.envs.test_toy_game import MatchingPennies  # noqa: F401  (registers dialogym/Pennies-v0, 1-2 rounds on "short")

    with pytest.raises(RuntimeError, match="only .* distinct short/test instances"):
        generate_instance_set("dialogym/Pennies-v0", 10, level="short")
    with pytest.warns(UserWarning, match="repeating them to make 10"):
        repeated = generate_instance_set("dialogym/Pennies-v0", 10, level="short", allow_repeats=True)
    ids = [json.dumps(item, sort_keys=True) for item in repeated.instances]
    assert len(ids) == 10 and 1 <= len(set(ids)) <= 2
    assert ids[: len(set(ids))] == list(dict.fromkeys(ids))  # the distinct ones first, then in the same order
