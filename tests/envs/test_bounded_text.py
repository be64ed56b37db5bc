"""bounded_text: one check of a reply's word and character caps, worded as a correction."""

import pytest

from dialogym.envs.core import InvalidMove, bounded_text


def test_text_within_both_caps_comes_back_unchanged():
    assert bounded_text("three short words", max_words=3, max_chars=17) == "three short words"


def test_too_many_words_names_the_count_and_the_cap():
    with pytest.raises(InvalidMove, match=r"^the reply has 4 words; use at most 3$"):
        bounded_text("a b c d", max_words=3, max_chars=100)


def test_a_few_huge_words_break_the_character_cap():
    with pytest.raises(InvalidMove, match=r"^the reply has 21 characters; use at most 20$"):
        bounded_text("a" * 10 + " " + "b" * 10, max_words=3, max_chars=20)


def test_words_are_checked_before_characters():
    with pytest.raises(InvalidMove, match="words"):
        bounded_text("a b c d " * 10, max_words=3, max_chars=10)


def test_the_game_words_its_own_correction():
    with pytest.raises(InvalidMove, match=r"^the clue has 2 words; keep it to 1, please$"):
        bounded_text("a b", max_words=1, max_chars=9, what="the clue", advice="keep it to {limit}, please")
    with pytest.raises(InvalidMove, match=r'^the clue has 10 characters; use at most 9, e.g\. "CLUE: red"$'):
        bounded_text("a" * 10, max_words=1, max_chars=9, what="the clue", chars_advice='use at most {limit}, e.g. "CLUE: red"')
