"""Conjecturer and prover, after Dong & Ma 2025, "STP: Self-play LLM Theorem Provers with
Iterative Conjecturing and Proving".

The conjecturer sees a seed problem (statement and certificate) and proposes a *new*
statement in the small formal language of :mod:`formal`, together with a hidden witness
that proves it true. The prover then gets ``k`` attempts (game option ``prover_attempts``,
default 2) to prove it; each attempt is checked by the verifier and the prover sees the
verdicts of its earlier attempts.

Rewards: the prover earns its success rate ``s`` (verified attempts / k). The conjecturer
earns ``1 - s`` when ``0 < s``: most for conjectures that are *barely provable*, nothing
for ones the prover always proves; an unproved (but true) conjecture earns 0.1.
Metrics: ``proved``, ``proof_rate`` (= s), ``difficulty`` (variables + degree + digits of
the largest coefficient), ``conjecture_valid``.

Moves:
- conjecturer: ``CONJECTURE: <statement>`` and ``WITNESS: <certificate>`` lines;
- prover: ``PROOF: <certificate>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import Game, Instance, InvalidMove, Move, Outcome, quote
from .formal import (
    CertificateVerifier,
    FormalError,
    Statement,
    Verifier,
    evaluate,
    make_verifier,
    p_mul,
    parse_polynomial,
    parse_statement,
    render,
)

#: level -> (largest root/witness magnitude, templates)
LEVELS = {
    "easy": (6, ("root", "factor2")),
    "medium": (12, ("root", "factor2", "pair")),
    "hard": (25, ("factor3", "pair", "triple")),
}
_LINE = r"^\s*{}\s*:\s*(.+?)\s*$"
_CONJ_RE = re.compile(_LINE.format("CONJECTURE"), re.IGNORECASE | re.MULTILINE)
_WIT_RE = re.compile(_LINE.format("WITNESS"), re.IGNORECASE | re.MULTILINE)
_PROOF_RE = re.compile(_LINE.format("PROOF"), re.IGNORECASE | re.MULTILINE)

GRAMMAR = """Statements (integers only; variables w, x, y, z; operators + - * ^ and parentheses):
  exists x, y: <expr> = <expr> [and <expr> (=, !=, <, >, <=, >=) <expr> ...]
  factor <polynomial in x of degree >= 2>
Certificates: for "exists", a witness like "x=4, y=-3"; for "factor", a product of at least
two non-constant integer factors like "(x-2)*(x+3)"."""


def template(rng: np.random.Generator, kind: str, bound: int) -> tuple[str, str]:
    """A true statement of the given kind and its certificate."""

    def r() -> int:
        value = 0
        while value == 0:
            value = int(rng.integers(-bound, bound + 1))
        return value

    def linear(root: int) -> str:
        return f"(x - {root})" if root > 0 else f"(x + {-root})"

    if kind == "root":
        a, b = r(), r()
        poly = p_mul(parse_polynomial(linear(a), ("x",)), parse_polynomial(linear(b), ("x",)))
        return f"exists x: {render(poly, ('x',))} = 0 and x > {min(a, b) - 1 if a != b else a - 1}", f"x={max(a, b)}"
    if kind in ("factor2", "factor3"):
        roots = [r() for _ in range(2 if kind == "factor2" else 3)]
        factors = [linear(root) for root in roots]
        poly = parse_polynomial("*".join(factors), ("x",))
        return f"factor {render(poly, ('x',))}", "*".join(factors)
    if kind == "pair":
        x, y = r(), r()
        return f"exists x, y: x^2 + y^2 = {x * x + y * y} and x + y = {x + y} and x > y - 1000", f"x={x}, y={y}"
    x, y, z = r(), r(), r()
    return f"exists x, y, z: x + y + z = {x + y + z} and x*y*z = {x * y * z} and x*y + y*z = {x * y + y * z}", f"x={x}, y={y}, z={z}"


class ConjectureInstance(Instance):
    seed_statement: str
    seed_certificate: str
    bound: int


class Conjecture(Move):
    statement: str
    witness: str
    difficulty: float


class Proof(Move):
    certificate: str


@dataclass
class ConjectureState:
    instance: ConjectureInstance
    statement: Statement | None = None
    conjecture: Conjecture | None = None
    attempts: list[tuple[str, bool, str]] = field(default_factory=list)  # (certificate, ok, message)


class ConjectureProverGame(Game[ConjectureInstance, ConjectureState]):
    roles = ("conjecturer", "prover")
    instance_cls = ConjectureInstance
    levels = tuple(LEVELS)
    max_reply_tokens = 96

    def __init__(self, prover_attempts: int = 2, verifier: str | Verifier = "certificate") -> None:
        if prover_attempts < 1:
            raise ValueError(f"prover_attempts must be >= 1, got {prover_attempts}")
        self.k = int(prover_attempts)
        self.verifier = make_verifier(verifier) if isinstance(verifier, str) else verifier
        self._witness_checker = CertificateVerifier()

    def generate_instance(self, rng: np.random.Generator, level: str) -> ConjectureInstance:
        bound, kinds = LEVELS[level]
        statement, certificate = template(rng, str(rng.choice(kinds)), bound)
        return ConjectureInstance(level=level, seed_statement=statement, seed_certificate=certificate, bound=bound)

    def initial_state(self, instance: ConjectureInstance) -> ConjectureState:
        return ConjectureState(instance=instance)

    def to_move(self, state: ConjectureState) -> list[str]:
        if state.conjecture is None:
            return ["conjecturer"]
        return [] if len(state.attempts) >= self.k else ["prover"]

    def prompt(self, state: ConjectureState, seat: str) -> str:
        inst = state.instance
        if seat == "conjecturer":
            return (
                "You are the CONJECTURER. Propose a new true statement that a prover will find hard, but not "
                "impossible, to prove.\n" + GRAMMAR + f"\n\nSeed problem:\n  {inst.seed_statement}\n  certificate: "
                f"{inst.seed_certificate}\n\nYour statement must differ from the seed. Reply with two lines:\n"
                "CONJECTURE: <statement>\nWITNESS: <certificate proving it; hidden from the prover>"
            )
        if not state.attempts:
            return (
                "You are the PROVER.\n" + GRAMMAR + f"\n\nProve this statement (you have {self.k} attempts):\n"
                f"{quote(state.conjecture.statement if state.conjecture else '')}\n\nReply with one line: PROOF: <certificate>"
            )
        certificate, ok, message = state.attempts[-1]
        verdict = "accepted" if ok else "rejected"
        return (
            f"Attempt {len(state.attempts)} was {verdict}: {message}.\n"
            f"Attempt {len(state.attempts) + 1} of {self.k}. Reply with one line: PROOF: <certificate>"
        )

    def parse_move(self, state: ConjectureState, seat: str, text: str) -> Move:
        if seat == "prover":
            proofs = _PROOF_RE.findall(text)
            if len(proofs) != 1:
                raise InvalidMove('reply with exactly one line "PROOF: <certificate>", e.g. "PROOF: x=4, y=3"')
            return Proof(certificate=proofs[0][:400])
        conjectures, witnesses = _CONJ_RE.findall(text), _WIT_RE.findall(text)
        example = 'e.g. "CONJECTURE: exists x: x^2 - 9 = 0 and x > 0" and "WITNESS: x=3"'
        if len(conjectures) != 1 or len(witnesses) != 1:
            raise InvalidMove(f"write exactly one CONJECTURE line and one WITNESS line, {example}")
        try:
            statement = parse_statement(conjectures[0])
        except FormalError as err:
            raise InvalidMove(f"the conjecture is not well-formed: {err}") from None
        if statement.text.replace(" ", "") == " ".join(state.instance.seed_statement.split()).replace(" ", ""):
            raise InvalidMove("the conjecture repeats the seed problem; propose a new statement")
        check = self._witness_checker.check(statement, witnesses[0])
        if not check.ok:
            raise InvalidMove(f"the witness does not prove the conjecture ({check.message}); give a true statement and its certificate")
        return Conjecture(statement=statement.text, witness=witnesses[0], difficulty=statement.difficulty)

    def apply(self, state: ConjectureState, moves: Mapping[str, Move]) -> None:
        ((seat, move),) = moves.items()
        if isinstance(move, Conjecture):
            state.conjecture, state.statement = move, parse_statement(move.statement)
            return
        assert isinstance(move, Proof) and state.statement is not None
        check = self.verifier.check(state.statement, move.certificate)
        state.attempts.append((move.certificate, check.ok, check.message))

    def is_terminal(self, state: ConjectureState) -> bool:
        return state.conjecture is not None and len(state.attempts) >= self.k

    def score(self, state: ConjectureState) -> Outcome:
        assert state.conjecture is not None
        rate = sum(ok for _, ok, _ in state.attempts) / self.k
        conjecturer = 1.0 - rate if rate > 0 else 0.1
        return Outcome(
            rewards={"conjecturer": conjecturer, "prover": rate},
            metrics={
                "proved": float(rate > 0),
                "proof_rate": rate,
                "difficulty": float(state.conjecture.difficulty),
                "conjecture_valid": 1.0,
            },
        )

    def view(self, state: ConjectureState, seat: str) -> dict[str, Any]:
        if seat == "conjecturer":
            inst = state.instance
            return {"seed_statement": inst.seed_statement, "seed_certificate": inst.seed_certificate, "bound": inst.bound}
        return {
            "statement": state.conjecture.statement if state.conjecture else None,
            "attempts": [(c, ok) for c, ok, _ in state.attempts],
        }


# -- scripted players --------------------------------------------------------------------
def scripted_conjecturer(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Varies the seed: the same kind of statement with fresh numbers, up to 1.5x the seed's bound."""
    seed = view["seed_statement"]
    if seed.startswith("factor"):
        kind = "factor3" if seed.count("x^3") else "factor2"
    else:
        kind = {1: "root", 2: "pair", 3: "triple"}[seed.split(":")[0].count(",") + 1]
    while True:
        statement, certificate = template(rng, kind, max(2, int(view["bound"] * 1.5)))
        if statement != seed:
            return f"CONJECTURE: {statement}\nWITNESS: {certificate}"


def _integer_roots(coefficients: dict[int, int]) -> list[int]:
    constant = coefficients.get(0, 0)
    if constant == 0:
        return [0]
    bound = min(abs(constant), 10**6)
    divisors = [d for d in range(1, int(bound**0.5) + 1) if constant % d == 0]
    candidates = sorted({s * d for d in divisors for s in (1, -1)} | {s * (abs(constant) // d) for d in divisors for s in (1, -1)})
    return [c for c in candidates if sum(a * c**k for k, a in coefficients.items()) == 0]


def scripted_prover(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Factors by integer roots (divisors of the constant term); proves ``exists`` by
    searching witnesses with |value| <= 20 (one or two variables) or <= 8 (three)."""
    statement = parse_statement(view["statement"])
    failed = {c for c, ok in view["attempts"] if not ok}
    if statement.kind == "factor":
        coefficients = {e[0]: c for e, c in statement.polynomial}
        factors, remaining = [], dict(coefficients)
        while max(remaining, default=0) >= 1:
            roots = _integer_roots(remaining)
            if not roots:
                break
            root = roots[0]
            factors.append(f"(x - {root})" if root >= 0 else f"(x + {-root})")
            # synthetic division by (x - root)
            degree = max(remaining)
            quotient, carry = {}, 0
            for k in range(degree, 0, -1):
                carry = remaining.get(k, 0) + carry * root if k != degree else remaining.get(k, 0)
                quotient[k - 1] = carry
            remaining = {k: v for k, v in quotient.items() if v}
        rest = render({(k,): v for k, v in remaining.items()}, ("x",))
        certificate = "*".join(factors + ([f"({rest})"] if rest not in ("1", "0") else []))
        return f"PROOF: {certificate or 'x'}"
    names = statement.variables
    bound = 20 if len(names) <= 2 else 8
    import itertools

    for values in itertools.product(range(-bound, bound + 1), repeat=len(names)):
        if all(c.holds(values) for c in statement.constraints):
            certificate = ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))
            if certificate not in failed:
                return f"PROOF: {certificate}"
    return "PROOF: " + ", ".join(f"{n}=0" for n in names)


def register_games() -> None:
    from ..registry import register

    register(
        "dialogym/ConjectureProver-v0", ConjectureProverGame, level="easy",
        players={"default": {"conjecturer": scripted_conjecturer, "prover": scripted_prover}},
    )


__all__ = ["ConjectureProverGame", "evaluate", "scripted_conjecturer", "scripted_prover"]
