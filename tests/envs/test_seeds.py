"""Seeds: an episode is (instance seed, play); every reply seed derives from both."""

import hashlib
import itertools
import json

import pytest

from dialogym.envs import Episode, Match, derive_seed, draw_instance, new_match, reply_seed
from dialogym.envs.instances import instance_set_seed

REF = "dialogym/Reference-v0"


def test_derived_seeds_are_31_bit_and_deterministic():
    seeds = [derive_seed(run, step, index) for run, step, index in itertools.product(range(4), range(8), range(8))]
    assert all(0 <= s < 2**31 for s in seeds)
    assert seeds == [derive_seed(run, step, index) for run, step, index in itertools.product(range(4), range(8), range(8))]
    assert len(set(seeds)) == len(seeds)


def test_derive_seed_refuses_negative_or_missing_keys():
    with pytest.raises(ValueError, match=">= 0"):
        derive_seed(1, -2)
    with pytest.raises(ValueError, match="at least one key"):
        derive_seed()


@pytest.mark.parametrize("turn,seat", [(0, 0), (3, 1), (17, 2)])
def test_a_group_of_64_plays_of_one_instance_gets_64_different_reply_seeds(turn, seat):
    seeds = {reply_seed(12345, play, turn, seat) for play in range(64)}
    assert len(seeds) == 64


def test_reply_seeds_differ_across_instance_seeds_plays_turns_and_seats():
    keys = list(itertools.product(range(50), range(8), range(6), range(3)))
    seeds = {reply_seed(*key) for key in keys}
    assert len(seeds) == len(keys)


def test_the_instance_set_seed_formula_is_frozen():
    # Published sets' fingerprints depend on it (tests/envs/test_instances_golden.py).
    assert [instance_set_seed(0, i) for i in range(3)] == [0, 1, 2]
    assert instance_set_seed(2, 5) == 2 * 1_000_003 + 5


def _finished(match: Match) -> Episode:
    match.submit("speaker", "CLUE: the shape")
    match.submit("listener", "ANSWER: 1")
    return match.episode({"speaker": "a", "listener": "b"})


def test_play_0_keeps_the_episode_id_it_had_before_plays_existed():
    episode = _finished(new_match(REF, 7))
    seats = {"speaker": "a", "listener": "b"}
    key = f"{REF}|{episode.instance_id}|7|{sorted(seats.items())}|{sorted({}.items())}"
    assert episode.id == hashlib.sha256(key.encode()).hexdigest()[:16]
    assert episode.play == 0


def test_another_play_of_the_same_instance_is_another_episode():
    first, second = _finished(new_match(REF, 7)), _finished(new_match(REF, 7, play=1))
    assert first.instance_id == second.instance_id
    assert second.play == 1 and first.id != second.id


def test_an_episode_record_without_play_reads_as_play_0():
    record = json.loads(_finished(new_match(REF, 7, play=3)).model_dump_json())
    del record["play"]
    assert Episode.model_validate(record).play == 0


def test_a_negative_play_is_refused():
    game = new_match(REF, 1).game
    with pytest.raises(ValueError, match="play must be >= 0"):
        Match(game, draw_instance(game, 1), play=-1)
