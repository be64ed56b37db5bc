"""The formal language of the conjecturer-prover game: parsing, bounds, hostile input, verifiers."""

import re
import shutil
import sys
import time

import pytest

from dialogym.envs.games.conjecture import formal
from dialogym.envs.games.conjecture.formal import (
    CertificateVerifier,
    FormalError,
    LeanVerifier,
    Verifier,
    canonical_key,
    decide,
    make_verifier,
    measures,
    parse_expr,
    parse_statement,
)

CERT = CertificateVerifier()


def verify(statement: str, proof: str):
    st = parse_statement(statement)
    return CERT.verify(st, CERT.parse_proof(st, proof))


def rejected_quickly(fn, text, fragment):
    start = time.perf_counter()
    with pytest.raises(FormalError, match=fragment):
        fn(text)
    assert time.perf_counter() - start < 1.0


# -- grammar -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "exists x, y in Z: x^2 + y^2 = 25 and x > y",
        "exists x in N: 0 < x < 5 and not (x = 2 or x = 3)",
        "exists q in Z[x]: x^3 - 1 = (x - 1)*q",
        "exists a, b in Z: (x + a)^2 + b = x^2 + 6*x + 13",
        "disprove forall x in N: x^2 - 5*x + 7 > 1",
        "factor x^2 - 5*x + 6",
        "identity (x + 1)^2 = x^2 + 2*x + 1",
        "exists x in Z: -x^2 = -4 and x >= 0 and x != 3",
    ],
)
def test_canonical_text_parses_back_to_the_same_statement(text):
    st = parse_statement(text)
    assert parse_statement(st.text) == st


def test_python_power_and_double_equals_are_read_as_caret_and_equals():
    assert parse_statement("exists x in Z: x**2 == 4").text == "exists x in Z: x^2 = 4"


def test_unary_minus_binds_looser_than_power():
    assert formal.expand(parse_expr("-x^2")) == {(("x", 2),): -1}


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("x^2 + y^2 = 25", 'starts with "exists"'),
        ("exists x, y in R: x = y", "domain must be Z"),
        ("exists x in Z x = 1", 'expected ":"'),
        ("exists x in Z: 2x = 4", "write 2*x, not 2x"),
        ("exists x in Z: x + 1", "write a condition"),
        ("exists x, x in Z: x = 1", "quantified twice"),
        ("exists x, y in Z: x = 1", "y does not appear"),
        ("exists x in Z: sqrt(x) = 2", "unknown word 'sqrt'"),
        ("exists x in Z: (x = 1) + 2 = 3", "arithmetic on a comparison"),
        ("exists x in Z: x = 1 and 3", "is a number, not a comparison"),
        ("exists q in Z[x]: q < x", "compare integers only"),
        ("exists q in Z[x]: q = y", "neither quantified nor listed"),
        ("disprove forall q in Z[x]: q = x", "ranges over Z or N only"),
        ("factor x + 1", "degree 2 or more"),
        ("factor 7", "degree 2 or more"),
        ("identity x = 1 = x", "one equation A = B"),
        ("exists x in Z: x = (1", 'expected ")"'),
    ],
)
def test_malformed_statements_are_rejected_with_a_corrective_message(text, fragment):
    with pytest.raises(FormalError, match=re.escape(fragment)):
        parse_statement(text)


# -- hostile input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,fragment",
    [
        ("(" * 10000 + "x" + ")" * 10000, "limit is 600"),
        ("(" * 100 + "x" + ")" * 100, "nested more than"),
        ("-" * 100 + "x", "nested more than"),
        ("2^2^2^2^99", "chained powers"),
        ("((9^9)^9)^9", "more than 300 digits"),
        ("x^100000", "exponent 100000 .* too large"),
        ("x^(2^10)", "must be a whole number"),
        ("99999999999999999999^64", "more than 300 digits"),
        ("(x + 1)^40*(x + 2)^40", "degree above 64"),
        ("(x + y + z + w + u + v + 1)^12", "more than 400 terms"),
        ("1" * 41, "at most 40"),
        ("x+" * 130 + "x", "more than 250 tokens"),
        ("x" * 5000, "limit is 600"),
    ],
)
def test_huge_or_deep_expressions_are_rejected_within_a_second(text, fragment):
    rejected_quickly(lambda t: formal.expand(parse_expr(t)), text, fragment)


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("().__class__", "unexpected character '.'"),
        ("__import__('os').system('ls')", "unexpected character '_'"),
        ("x.__class__.__mro__", "unexpected character '.'"),
        ("exec('1')", "unexpected character"),
        ("lambda: 1", "unknown word 'lambda'"),
        ("x[0]", "unexpected"),
    ],
)
def test_python_syntax_and_dunders_are_not_part_of_the_language(text, fragment):
    rejected_quickly(parse_expr, text, fragment)


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("exists x in Z: x = \uff11", "FULLWIDTH DIGIT ONE.*ASCII digits"),
        ("exists x in Z: x\u00b2 = 4", "SUPERSCRIPT TWO.*\\^"),
        ("exists x in Z: x\u200b = 4", "ZERO WIDTH SPACE.*invisible"),
        ("exists \u0445 in Z: \u0445 = 1", "CYRILLIC SMALL LETTER HA.*only looks like one"),
        ("exists x in Z: x = 1\u00a0", "NO-BREAK SPACE"),
        ("exists x in Z: x = 1\n and x = 2", "U\\+000A"),
        ("exists x in Z: x \u2212 1 = 0", "MINUS SIGN"),
    ],
)
def test_unicode_tricks_are_rejected_and_named(text, fragment):
    rejected_quickly(parse_statement, text, fragment)


def test_expansion_work_is_capped_even_when_every_single_bound_is_met():
    text = "exists x in Z: " + " + ".join(["(x + y + z + w + 1)^4*(x - y + z - w + 2)^4"] * 4) + " = 0"
    start = time.perf_counter()
    with pytest.raises(FormalError, match="more than|steps"):
        parse_statement(text)
    assert time.perf_counter() - start < 1.0


def test_intermediate_integers_are_capped_at_300_digits():
    formal.expand(parse_expr("(10^50)^5"))  # 251 digits: fine
    with pytest.raises(FormalError, match="more than 300 digits"):
        formal.expand(parse_expr("(10^50)^5*(10^50)^2"))


def test_factor_statements_have_their_own_size_caps():
    with pytest.raises(FormalError, match="degree <= 12"):
        parse_statement("factor x^13 + 1")
    with pytest.raises(FormalError, match="in <= 2 variables"):
        parse_statement("factor x*y*z + 1 + x^2")


# -- semantics -------------------------------------------------------------------------------
def test_measures_count_variables_degree_and_digits():
    m = measures(parse_statement("exists x, y in Z: x^2 + y^3 = 1000 and x > y"))
    assert (m.num_vars, m.degree, m.max_digits, m.difficulty) == (2, 3, 4, 9.0)


def test_statements_equal_up_to_expansion_share_a_canonical_key():
    a = parse_statement("exists x, y in Z: x^2 + y^2 = 25 and x > y")
    b = parse_statement("exists x, y in Z: x > y and y^2 + x*x = 5^2")
    c = parse_statement("exists x, y in Z: x^2 + y^2 = 26 and x > y")
    assert canonical_key(a) == canonical_key(b) != canonical_key(c)


def test_factor_and_identity_truth_is_decided_other_kinds_are_not():
    assert decide(parse_statement("factor x^2 - 5*x + 6")) is True
    assert decide(parse_statement("factor x^2 + 1")) is False
    assert decide(parse_statement("identity (x + 1)^2 = x^2 + 2*x + 1")) is True
    assert decide(parse_statement("identity (x + 1)^2 = x^2 + 1")) is False
    assert decide(parse_statement("exists x in Z: x^2 = 2")) is None


# -- the certificate verifier ------------------------------------------------------------------
@pytest.mark.parametrize(
    "statement,proof",
    [
        ("exists x, y in Z: x^2 + y^2 = 25 and x > y", "x=4, y=3"),
        ("exists x, y in Z: x^2 + y^2 = 25 and x > y", "y = -4, x = 3"),
        ("exists x in N: x^3 = 2^30", "x = 2^10"),
        ("exists q in Z[x]: x^3 - 1 = (x - 1)*q", "q = x^2 + x + 1"),
        ("exists a, b in Z: (x + a)^2 + b = x^2 + 6*x + 13", "a=3, b=4"),
        ("disprove forall x in N: x^2 - 5*x + 7 > 1", "x=2"),
        ("factor x^2 - 5*x + 6", "(x - 2)*(x - 3)"),
        ("factor 2*x^3 - 2*x", "2*x*(x - 1)*(x + 1)"),
        ("factor x^4 - 2*x^2 + 1", "(x - 1)^2*(x + 1)^2"),
        ("factor x^3 + x", "-x*(-x^2 - 1)"),
        ("factor x^2 - y^2", "(x - y)*(x + y)"),
        ("identity (x + 1)^2 = x^2 + 2*x + 1", "(x + 1)^2 = (x + 1)*(x + 1) = x^2 + 2*x + 1"),
        ("identity (x + 1)^2 = x^2 + 2*x + 1", "(x+1)^2 = x^2+2*x+1"),
    ],
)
def test_valid_certificates_verify(statement, proof):
    verdict = verify(statement, proof)
    assert verdict.ok, verdict.message


@pytest.mark.parametrize(
    "statement,proof,fragment",
    [
        ("exists x, y in Z: x^2 + y^2 = 25 and x > y", "x=3, y=4", "'x > y' is false: it evaluates to 3 > 4"),
        ("exists x in Z: x^2 = 4", "x=3", "evaluates to 9 = 4"),
        ("exists x in N: x^2 = 4", "x=-2", "must be a natural number"),
        ("exists q in Z[x]: x^3 - 1 = (x - 1)*q", "q = x^2 + 1", "false"),
        ("disprove forall x in N: x^2 - 5*x + 7 > 1", "x=5", "not a counterexample"),
        ("factor x^2 - 5*x + 6", "(x - 2)*(x + 3)", "expands to x^2 + x - 6"),
        ("factor x^3 - x", "x*(x^2 - 1)", "x^2 - 1 is not irreducible"),
        ("factor 2*x^2 - 2", "2*(x^2 - 1)", "not irreducible"),
        ("factor x^2 - 5*x + 6", "x^2 - 5*x + 6", "not irreducible"),
        ("identity (x + 1)^2 = x^2 + 2*x + 1", "(x + 1)^2 = x^2 + 1 = x^2 + 2*x + 1", "step 1 fails"),
        ("identity (x + 1)^2 = x^2 + 2*x + 1", "x^2 + 2*x + 1 = (x + 1)^2", "must start with"),
    ],
)
def test_wrong_certificates_fail_with_the_reason(statement, proof, fragment):
    verdict = verify(statement, proof)
    assert not verdict.ok
    assert fragment in verdict.message, verdict.message


@pytest.mark.parametrize(
    "statement,proof,fragment",
    [
        ("exists x, y in Z: x^2 + y^2 = 25", "x=4", "no value for y"),
        ("exists x, y in Z: x^2 + y^2 = 25", "x=4, y=3, z=1", "z is not a quantified variable"),
        ("exists x, y in Z: x^2 + y^2 = 25", "x=4, x=3", "x is given twice"),
        ("exists x in Z: x^2 = 4", "x=y", "uses y; values must be integers"),
        ("exists x in Z: x^2 = 4", "x=2 y=1", "missing operator"),
        ("exists q in Z[x]: x^2 - 1 = (x - 1)*q", "q = y + 1", "polynomials in x"),
        ("factor x^2 - 1", "(x - 1)*(x + 1) = 0", "not a comparison"),
        ("identity (x + 1)^2 = x^2 + 2*x + 1", "x^2 + 2*x + 1", "must be a comparison"),
        ("identity x*x = x^2", "x*x < x^2", "chain of equalities"),
        ("identity x*x = x^2", " = ".join(["x^2"] * 14), "at most 12"),
    ],
)
def test_malformed_certificates_are_format_errors(statement, proof, fragment):
    st = parse_statement(statement)
    with pytest.raises(FormalError, match=re.escape(fragment)):
        CERT.parse_proof(st, proof)


def test_a_certificate_too_costly_to_check_fails_instead_of_hanging():
    start = time.perf_counter()
    verdict = verify("exists x in Z: x^2 = 4", "x = (10^40)^7*(10^40)^2")
    assert not verdict.ok and "digits" in verdict.message
    assert time.perf_counter() - start < 1.0


# -- pluggable verifiers ---------------------------------------------------------------------
def test_both_verifiers_satisfy_the_protocol_and_are_picked_by_name():
    assert isinstance(CERT, Verifier) and isinstance(LeanVerifier(), Verifier)
    assert make_verifier("certificate").name == "certificate"
    assert make_verifier(CERT) is CERT
    with pytest.raises(ValueError, match="unknown verifier 'coq'"):
        make_verifier("coq")
    with pytest.raises(TypeError, match="must be 'certificate', 'lean' or a Verifier"):
        make_verifier(42)


def test_lean_statements_use_int_with_nonnegativity_for_n_and_no_mathlib():
    lean = LeanVerifier()
    st = parse_statement("exists x, y in N: x^2 + y^2 = 25 and x > y")
    assert formal.lean_proposition(st) == "∃ x y : Int, (0 ≤ x ∧ 0 ≤ y ∧ ((((x ^ 2) + (y ^ 2)) = 25) ∧ (x > y)))"
    assert formal.lean_proposition(parse_statement("disprove forall x in Z: x != 3")).startswith("¬ (∀ x : Int,")
    assert lean.supports(parse_statement("factor x^2 - 1")) is not None
    assert lean.supports(parse_statement("identity (x + 1)^2 = x^2 + 2*x + 1")) is None


@pytest.mark.parametrize(
    "proof,fragment",
    [
        ("sorry", "sorry"),
        ("native_decide", "native_decide"),
        ("exact ⟨4, 3, by decide⟩\n#eval IO.Process.exit 0", "one line"),
        ("decide; run_tac (pure ())", "run_"),
        ("exact (by decide : True) #print", "#"),
        ("", "empty"),
    ],
)
def test_lean_proofs_that_could_escape_or_cheat_are_format_errors(proof, fragment):
    st = parse_statement("exists x in Z: x = 1")
    with pytest.raises(FormalError, match=re.escape(fragment)):
        LeanVerifier().parse_proof(st, proof)


@pytest.fixture
def fake_lean(tmp_path):
    """A stand-in `lean`: accepts files whose proof mentions 'decide', hangs on 'loop'."""
    script = tmp_path / "lean"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        "src = open(sys.argv[1]).read()\n"
        "if 'loop' in src: time.sleep(10)\n"
        "if 'decide' in src: print(\"'conjecture' depends on axioms: [propext]\"); sys.exit(0)\n"
        "print(sys.argv[1] + ':2:2: error: unsolved goals'); sys.exit(1)\n"
    )
    script.chmod(0o755)
    return str(script)


def test_lean_verifier_runs_the_executable_on_a_theorem_file(fake_lean):
    lean = LeanVerifier(executable=fake_lean, timeout_s=2)
    st = parse_statement("exists x, y in Z: x^2 + y^2 = 25 and x > y")
    source = lean.source(st, "exact ⟨4, 3, by decide⟩")
    assert source.startswith("theorem conjecture : ∃ x y : Int,") and "#print axioms conjecture" in source
    assert lean.verify(st, lean.parse_proof(st, "exact ⟨4, 3, by decide⟩")).ok
    failed = lean.verify(st, lean.parse_proof(st, "rfl"))
    assert not failed.ok and "unsolved goals" in failed.message


def test_lean_verifier_times_out_instead_of_hanging(fake_lean):
    lean = LeanVerifier(executable=fake_lean, timeout_s=0.5)
    st = parse_statement("exists x in Z: x = 1")
    start = time.perf_counter()
    verdict = lean.verify(st, lean.parse_proof(st, "loop"))
    assert not verdict.ok and "did not finish" in verdict.message
    assert time.perf_counter() - start < 5


def test_lean_verifier_without_lean_fails_cleanly():
    lean = LeanVerifier(executable="no-such-lean-executable")
    st = parse_statement("exists x in Z: x = 1")
    assert not lean.available
    assert "not on the PATH" in lean.verify(st, "decide").message


@pytest.mark.skipif(shutil.which("lean") is not None, reason="lean is installed here")
def test_choosing_the_lean_verifier_without_lean_is_one_clear_error():
    with pytest.raises(ValueError, match="needs a Lean 4 'lean' executable on the PATH"):
        make_verifier("lean")


@pytest.mark.skipif(shutil.which("lean") is None, reason="needs a Lean 4 `lean` executable on the PATH")
def test_real_lean_checks_a_witness_and_rejects_a_wrong_one():
    lean = LeanVerifier(timeout_s=120)
    st = parse_statement("exists x, y in Z: x^2 + y^2 = 25 and x > y")
    assert lean.verify(st, lean.parse_proof(st, "exact ⟨4, 3, by decide⟩")).ok
    assert not lean.verify(st, lean.parse_proof(st, "exact ⟨3, 4, by decide⟩")).ok
