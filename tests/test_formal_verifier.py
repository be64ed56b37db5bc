"""The formal language: exact checking, and hostile input rejected fast and clearly."""

import re
import shutil
import time

import pytest

from dialogym.envs.games.formal import (
    CertificateVerifier,
    FormalError,
    LeanVerifier,
    count_factors,
    parse_polynomial,
    parse_statement,
    render,
)

VERIFY = CertificateVerifier()


def test_polynomials_expand_exactly():
    poly = parse_polynomial("(x - 2)*(x + 3) - x^2", ("x",))
    assert render(poly, ("x",)) == "x - 6"
    assert parse_polynomial("-(x+1)^2", ("x",)) == {(2,): -1, (1,): -2, (0,): -1}


def test_existence_certificates_are_checked_against_every_constraint():
    statement = parse_statement("exists x, y: x^2 + y^2 = 25 and x > y")
    assert VERIFY.check(statement, "x=4, y=3").ok
    assert not VERIFY.check(statement, "x=3, y=4").ok  # x > y fails
    assert not VERIFY.check(statement, "x=1, y=1").ok
    assert "no value for y" in VERIFY.check(statement, "x=4").message
    assert "cannot read" in VERIFY.check(statement, "x=four, y=3").message


def test_factorisations_must_expand_to_the_polynomial_with_two_or_more_factors():
    statement = parse_statement("factor x^2 - 5*x + 6")
    assert VERIFY.check(statement, "(x-2)*(x-3)").ok
    assert not VERIFY.check(statement, "(x-2)*(x+3)").ok
    assert "at least two non-constant factors" in VERIFY.check(statement, "x^2 - 5*x + 6").message
    assert count_factors("2*(x-1)^2*(x+3)") == 3


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("(" * 10000 + "x" + ")" * 10000, "characters; the limit"),
        ("(" * 60 + "x" + ")" * 60, "nested deeper than"),
        ("2^2^2^2^99", "chained exponents"),
        ("x^100000", "too large"),
        ("(x+1)^12^12", "chained exponents"),
        ("((x+1)^12)^12", "degree above"),
        ("(x+y+z+w)^12", "more than 400 terms"),
        ("9" * 61, "more than 60 digits"),
        ("(" + "9" * 50 + ")^12", "more than 60 digits"),
        ("().__class__", "unexpected"),
        ("__import__('os').system('ls')", "unexpected"),
        ("x.real", "unexpected"),
        ("open(x)", "unknown name 'open'"),
        ("\uff11 + x", "U+FF11"),  # fullwidth digit one
        ("x\u00b2", "U+00B2"),  # superscript two
        ("x\u200b+1", "U+200B"),  # zero-width space
        ("\u0445 + 1", "U+0445"),  # Cyrillic x, a homoglyph
        ("x" + "+x" * 150, "more than 200 tokens"),
    ],
)
def test_hostile_expressions_are_rejected_quickly_with_a_reason(text, fragment):
    started = time.perf_counter()
    with pytest.raises(FormalError, match=re.escape(fragment)):
        parse_polynomial(text, ("w", "x", "y", "z"))
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("there is an x", 'a statement is "exists'),
        ("exists x, x: x = 1", "distinct"),
        ("exists a: a = 1", "distinct names from"),
        ("exists x: x > 1", "must be an equation"),
        ("exists x: x = 1 = 2", "exactly one comparison"),
        ("exists w, x, y, z: w = x", "at most 3 variables"),
        ("factor x + 1", "degree 2 or more"),
    ],
)
def test_malformed_statements_are_rejected(text, fragment):
    with pytest.raises(FormalError, match=fragment):
        parse_statement(text)


def test_huge_witness_values_are_refused():
    statement = parse_statement("exists x: x = x")
    assert "at most" in VERIFY.check(statement, "x=" + "9" * 13).message


def test_lean_source_states_the_existence_claim():
    statement = parse_statement("exists x: x^2 = 9 and x > 0")
    verifier = LeanVerifier.__new__(LeanVerifier)
    source = verifier.lean_source(statement, (3,))
    assert source.startswith("example : ∃ x : Int,") and "⟨(3 : Int), by decide⟩" in source


@pytest.mark.skipif(shutil.which("lean") is None, reason="no Lean 4 executable on the PATH")
def test_lean_verifier_accepts_a_true_witness_and_rejects_a_false_one():
    verifier = LeanVerifier()
    statement = parse_statement("exists x: x^2 = 9 and x > 0")
    assert verifier.check(statement, "x=3").ok
    assert not verifier.check(statement, "x=-3").ok


def test_lean_verifier_without_lean_says_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="install Lean 4"):
        LeanVerifier()
