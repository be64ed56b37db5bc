"""envs.grammar: the pieces move grammars are built from accept exactly what they say."""

import re

import pytest

from dialogym.agents.guidance import accepts
from dialogym.envs.grammar import _range_regex, alt, grammar, int_range, lit, text


@pytest.mark.parametrize("lo,hi", [(0, 0), (1, 3), (0, 10), (7, 123), (1, 1000), (99, 101), (45, 98765)])
def test_int_range_matches_exactly_the_numbers_in_range_without_leading_zeros(lo, hi):
    pattern = re.compile(f"^{_range_regex(lo, hi)}$")
    assert [n for n in range(hi * 2 + 20) if pattern.match(str(n))] == list(range(lo, hi + 1))
    assert not pattern.match("0" + str(max(lo, 1)))


def test_int_range_refuses_an_empty_range():
    with pytest.raises(ValueError, match="lo <= hi"):
        int_range(5, 4)


def test_number_choice_and_literal_compose_into_a_grammar():
    g = grammar(f"{lit('ANSWER: ')} {int_range(1, 12)}")
    assert accepts(g, "ANSWER: 12") and accepts(g, "ANSWER: 1")
    assert not accepts(g, "ANSWER: 13") and not accepts(g, "ANSWER: 01") and not accepts(g, "answer: 1")
    v = grammar(f"{lit('VERDICT: ')} {alt(['A', 'B'])}")
    assert accepts(v, "VERDICT: A") and not accepts(v, "VERDICT: C")


def test_text_is_bounded_trimmed_and_stays_on_one_line():
    g = grammar(f"{lit('CLUE: ')} {text(12, exclude='0-9')}")
    assert accepts(g, "CLUE: red one") and accepts(g, "CLUE: " + "a" * 12) and accepts(g, "CLUE: a")
    assert not accepts(g, "CLUE: " + "a" * 13)  # longer than the cap
    assert not accepts(g, "CLUE: r3d")  # an excluded character
    assert not accepts(g, "CLUE:  red") and not accepts(g, "CLUE: red ")  # parsers strip: no blank edges
    for brk in ("\n", "\r", "\u2028", "\x85", "\x0b"):  # every line break str.splitlines knows
        assert not accepts(g, f"CLUE: a{brk}b"), repr(brk)
    multi = grammar(text(30, newlines=True))
    assert accepts(multi, "line one\nline two")


def test_text_with_a_minimum_length():
    g = grammar(text(6, min_chars=3))
    assert [accepts(g, "a" * n) for n in range(1, 8)] == [False, False, True, True, True, True, False]
