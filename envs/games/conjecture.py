"""Conjecturer and prover, after Dong & Ma 2025, "STP: Self-play LLM Theorem Provers with
Iterative Conjecturing and Proving".

The conjecturer sees seed problems (statements with their proofs) and proposes a new
statement in the small formal language of :mod:`.formal`; the prover then has
``prover_attempts`` turns (game option, default 3) to prove it, seeing the verifier's
verdict on each failed attempt. The game ends at the first verified proof.

Moves:
- conjecturer: one line ``CONJECTURE: <statement>`` and, optionally, one line
  ``WITNESS: <proof>``. The statement must parse; a ``factor``/``identity`` statement that
  is decidably false is refused, and so is a witness that does not verify. The witness is
  never shown to the prover; it makes an unproved statement count as true;
- prover: one line ``PROOF: <proof>``. A proof that does not parse is an invalid move
  (re-prompted, no attempt spent); a well-formed proof the verifier rejects spends one.

Scoring, with k attempts and the first verified proof at attempt j:
- ``success_rate`` = (k - j + 1) / k (the share of the k attempts that would pass if the
  prover kept resubmitting its proof), 0 when unproved;
- prover: ``success_rate`` = 1 - (j - 1)/k: 1 at the first attempt, falling with each
  failed one, 0 when unproved -- so a prover never gains by sandbagging (failing on
  purpose to raise the conjecturer's reward);
- conjecturer: 1 - success_rate when proved (0 when proved at once: *trivial*; most when
  proved only at the last attempt: *barely provable*); ``unproved_true_reward`` (0.1)
  when unproved but known true (witness verified, or decided true); 0 when unproved and
  undecided; 0 whenever the statement is a seed problem again (same up to expansion).

Metrics: ``proved``, ``success_rate``, ``attempts_used``, ``conjecture_valid`` (known
true), ``witness_given``, ``copied_seed``, ``trivial``, ``difficulty`` (variables + degree +
digits of the largest number), ``num_vars``, ``degree``, ``max_digits`` and one
``kind_<kind>`` flag.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..core import Game, Instance, InvalidMove, Move, Outcome, RuleViolation, unify_line_breaks
from ..grammar import grammar, lit
from . import formal
from .formal import FormalError, Statement, Verifier
from .formal.grammar import conjecture_forms, proof_terminal

# -- levels and seed problems --------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    num: int  # largest witness, root or value
    coef: int  # largest coefficient of generated polynomials
    degree: int  # highest degree
    vars: int  # most quantified variables


LEVELS: dict[str, Level] = {
    "easy": Level(num=9, coef=3, degree=2, vars=2),
    "medium": Level(num=30, coef=6, degree=3, vars=3),
    "hard": Level(num=120, coef=12, degree=4, vars=3),
}
NAMES = ("x", "y", "z")
SEEDS_PER_INSTANCE = 3


def _nonzero(rng: np.random.Generator, bound: int) -> int:
    value = int(rng.integers(1, bound + 1))
    return value if rng.random() < 0.5 else -value


def _linear(root: int, lead: int = 1, var: str = "x") -> str:
    head = var if lead == 1 else f"{lead}*{var}"
    return f"({head} - {root})" if root >= 0 else f"({head} + {-root})"


def _text(poly_text: str) -> formal.Poly:
    return formal.expand(formal.parse_expr(poly_text))


def t_squares(rng: np.random.Generator, lv: Level) -> tuple[str, str]:
    """Sum of squares with an ordering: ``exists x, y in Z: x^2 + y^2 = 25 and x > y > 0``."""
    n = 2 if lv.vars == 2 else int(rng.integers(2, lv.vars + 1))
    values = sorted((int(v) for v in rng.choice(np.arange(1, lv.num + 1), size=n, replace=False)), reverse=True)
    names = NAMES[:n]
    total = sum(v * v for v in values)
    squares = " + ".join(f"{v}^2" for v in names)
    return (
        f"exists {', '.join(names)} in Z: {squares} = {total} and {' > '.join(names)} > 0",
        ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True)),
    )


def t_linear(rng: np.random.Generator, lv: Level) -> tuple[str, str]:
    """A linear system with an integer solution: ``exists x, y in Z: 2*x + 3*y = 12 and x - y = 1``."""
    n = int(rng.integers(2, lv.vars + 1))
    names = NAMES[:n]
    values = [int(rng.integers(-lv.num, lv.num + 1)) for _ in names]
    while True:
        rows = [[int(rng.integers(-lv.coef, lv.coef + 1)) for _ in names] for _ in names]
        if round(float(np.linalg.det(np.array(rows, dtype=float)))) != 0:
            break
    equations = []
    for row in rows:
        lhs = formal.poly_text({((v, 1),): c for v, c in zip(names, row, strict=True) if c})
        equations.append(f"{lhs} = {sum(c * v for c, v in zip(row, values, strict=True))}")
    return (
        f"exists {', '.join(names)} in Z: {' and '.join(equations)}",
        ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True)),
    )


def t_root(rng: np.random.Generator, lv: Level) -> tuple[str, str]:
    """The largest integer root of a polynomial: ``exists x in Z: x^2 - 5*x + 6 = 0 and x > 2``."""
    d = int(rng.integers(2, lv.degree + 1))
    roots = sorted(int(rng.integers(-lv.num, lv.num + 1)) for _ in range(d))
    poly = _text("*".join(_linear(r) for r in roots))
    below = roots[-2] if roots[-2] < roots[-1] else roots[-1] - 1
    return f"exists x in Z: {formal.poly_text(poly)} = 0 and x > {below}", f"x={roots[-1]}"


def t_factor(rng: np.random.Generator, lv: Level) -> tuple[str, str]:
    """A factorisation: ``factor x^2 - 5*x + 6`` / ``(x - 2)*(x - 3)``."""
    d = int(rng.integers(2, lv.degree + 1))
    factors: list[str] = []
    if d >= 3 and rng.random() < 0.5:  # an irreducible quadratic factor
        factors.append(f"(x^2 + {int(rng.integers(1, lv.num + 1))})")
        d -= 2
    leads = 1 if lv.coef <= 3 else 3
    for _ in range(d):
        lead = int(rng.integers(1, leads + 1))
        root = _nonzero(rng, lv.num)
        while math.gcd(lead, root) != 1:
            root = _nonzero(rng, lv.num)
        factors.append(_linear(root, lead))
    product = "*".join(sorted(factors))
    return f"factor {formal.poly_text(_text(product))}", product


def t_divides(rng: np.random.Generator, lv: Level) -> tuple[str, str]:
    """An exact polynomial quotient: ``exists q in Z[x]: x^3 - 1 = (x - 1)*q`` / ``q = x^2 + x + 1``."""
    d = int(rng.integers(1, lv.degree))
    coefs = [int(rng.integers(-lv.coef, lv.coef + 1)) for _ in range(d)] + [_nonzero(rng, lv.coef)]
    quotient = {(("x", i),) if i else (): c for i, c in enumerate(coefs) if c}
    divisor = _linear(_nonzero(rng, lv.num))
    if lv.degree >= 4 and rng.random() < 0.5:
        divisor = f"(x^2 + {_nonzero(rng, lv.coef)}*x + {_nonzero(rng, lv.num)})"
    product = formal.poly_mul(_text(divisor), quotient, formal.Budget())
    return f"exists q in Z[x]: {formal.poly_text(product)} = {divisor}*q", f"q = {formal.poly_text(quotient)}"


def t_square(rng: np.random.Generator, lv: Level) -> tuple[str, str]:
    """Completing the square: ``exists a, b in Z: (x + a)^2 + b = x^2 + 6*x + 13``."""
    c = 1 if lv.coef <= 3 else int(rng.integers(1, 4))
    a, b = _nonzero(rng, lv.num), int(rng.integers(-lv.num, lv.num + 1))
    target = _text(f"({c}*x + {a})^2 + {b}" if a >= 0 else f"({c}*x - {-a})^2 + {b}")
    head = "x" if c == 1 else f"{c}*x"
    return f"exists a, b in Z: ({head} + a)^2 + b = {formal.poly_text(target)}", f"a={a}, b={b}"


def t_counter(rng: np.random.Generator, lv: Level) -> tuple[str, str]:
    """A counterexample: ``disprove forall x in N: x^2 - 7*x + 12 > 0`` / ``x=3``."""
    if lv.vars >= 3 and rng.random() < 0.5:
        a, b = _nonzero(rng, lv.coef), _nonzero(rng, lv.coef)
        x, y = int(rng.integers(-lv.num, lv.num + 1)), int(rng.integers(-lv.num, lv.num + 1))
        lhs = formal.poly_text({(("x", 1),): a, (("y", 1),): b})
        return f"disprove forall x, y in Z: {lhs} != {a * x + b * y}", f"x={x}, y={y}"
    d = int(rng.integers(2, lv.degree + 1))
    roots = sorted(int(rng.integers(0, lv.num + 1)) for _ in range(d))
    poly = _text("*".join(_linear(r) for r in roots))
    return f"disprove forall x in N: {formal.poly_text(poly)} > 0", f"x={roots[0]}"


def t_identity(rng: np.random.Generator, lv: Level) -> tuple[str, str]:
    """A polynomial identity: ``identity (x + 2)^2 = x^2 + 4*x + 4``, proved by a chain."""
    if lv.vars >= 3 and rng.random() < 0.5:
        lhs = f"({_linear(_nonzero(rng, lv.num))[1:-1]})*(y + {int(rng.integers(1, lv.num + 1))})"
    else:
        lhs = f"{_linear(_nonzero(rng, lv.num))}^{int(rng.integers(2, lv.degree + 1))}"
    rhs = formal.poly_text(_text(lhs))
    return f"identity {lhs} = {rhs}", f"{lhs} = {rhs}"


TEMPLATES: dict[str, Callable[[np.random.Generator, Level], tuple[str, str]]] = {
    "squares": t_squares,
    "linear": t_linear,
    "root": t_root,
    "factor": t_factor,
    "divides": t_divides,
    "square": t_square,
    "counter": t_counter,
    "identity": t_identity,
}


def make_problem(template: str, rng: np.random.Generator, level: str) -> tuple[str, str]:
    """A true statement of ``template`` at ``level`` and its proof, in canonical text."""
    statement, proof = TEMPLATES[template](rng, LEVELS[level])
    return formal.parse_statement(statement).text, proof


# -- instances, moves, state ---------------------------------------------------------------
class SeedProblem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str
    statement: str
    proof: str


class ConjectureInstance(Instance):
    seeds: list[SeedProblem]


class Conjecture(Move):
    statement: str
    witness: str | None = None
    known_true: bool = False


class Proof(Move):
    text: str


@dataclass
class ConjectureState:
    instance: ConjectureInstance
    statement: Statement | None = None
    conjecture: Conjecture | None = None
    attempts: list[tuple[str, bool, str]] = field(default_factory=list)  # (proof, verified, message)
    proved_at: int | None = None


# (.*\S)? rather than (.*?)[ \t]*: a lazy group before trailing blanks is quadratic in them.
_LINE = r"^[ \t]*{}[ \t]*:[ \t]*(.*\S)?[ \t]*$"
_CONJ_RE = re.compile(_LINE.format("CONJECTURE"), re.IGNORECASE | re.MULTILINE)
_WIT_RE = re.compile(_LINE.format("WITNESS"), re.IGNORECASE | re.MULTILINE)
_PROOF_RE = re.compile(_LINE.format("PROOF"), re.IGNORECASE | re.MULTILINE)
CONJECTURE_EXAMPLE = 'e.g. "CONJECTURE: exists x, y in Z: x^2 + y^2 = 25 and x > y" then "WITNESS: x=4, y=3"'

LANGUAGE = """The language (plain ASCII only):
- numbers 0-9, variables a lower-case letter optionally followed by digits (x, y, q, x1);
- + - * ^ and parentheses; write 2*x, not 2x; exponents are digits (x^3, at most 64);
- comparisons = != < <= > >= (chains like 0 < x < 5 are fine), combined with and, or, not.
Statements:
- exists x, y in Z: <condition>        (Z = integers, N = integers >= 0)
    proof: values, e.g. "x=4, y=3"
- exists q in Z[x]: <condition>       (q ranges over polynomials in x with integer coefficients)
    proof: polynomials, e.g. "q = x^2 + x + 1"
- disprove forall x in N: <condition>  (claims the condition fails somewhere)
    proof: a counterexample, e.g. "x=3"
- factor <polynomial>                 (claims it factors over the integers)
    proof: the product of irreducible factors, e.g. "(x - 2)*(x - 3)" or "2*(x - 1)^2*(x + 3)"
- identity <A> = <B>                  (claims A and B are the same polynomial)
    proof: an equality chain A = C = ... = B; every step is checked by expanding both sides.
Variables a statement does not quantify are polynomial variables: "=" then means identity."""

CONJECTURER_RULES = """You are the CONJECTURER in a conjecture-and-proof game with a PROVER.
Propose a new true statement that the prover can prove, but only with difficulty: you score
most when the prover fails at first and succeeds at its last attempt, nothing when it proves
your statement at its first attempt or when you repeat a seed problem.
{language}

The prover gets {k} attempts. Add a WITNESS line with your own proof: it is checked now and
never shown to the prover, and a statement with a valid witness earns {unproved} even if the
prover fails. A wrong witness is refused.

Seed problems (statement / proof) to start from:
{seeds}

Reply with one line "CONJECTURE: <statement>" and optionally one line "WITNESS: <proof>", {example}."""

PROVER_RULES = """You are the PROVER in a conjecture-and-proof game. A conjecturer proposed the
statement below; prove it. You have {k} attempts; after a failed one you see the verifier's verdict.
A proof at the first attempt scores 1; each failed attempt before it costs 1/{k}.
{language}

Statement:
  {statement}

Reply with exactly one line:
{format}"""


class ConjectureProverGame(Game[ConjectureInstance, ConjectureState]):
    roles = ("conjecturer", "prover")
    instance_cls = ConjectureInstance
    levels = tuple(LEVELS)
    instance_version = "v0"
    max_retries = 2
    max_reply_tokens = 200
    reward_range = (0.0, 1.0)
    zero_sum = True  # once proved, the conjecturer gets 1 minus the prover's success rate
    selfplay_description = "100 × proved, for a conjecture that is not a copied seed statement"

    def selfplay_score(self, outcome: Outcome) -> float:
        return 100.0 * outcome.metric("proved") * (1.0 - outcome.metric("copied_seed"))

    def __init__(
        self,
        prover_attempts: int = 3,
        verifier: str | Verifier = "certificate",
        unproved_true_reward: float = 0.1,
    ) -> None:
        if int(prover_attempts) < 1:
            raise ValueError(f"prover_attempts must be at least 1, got {prover_attempts}")
        self.k = int(prover_attempts)
        self.verifier = formal.make_verifier(verifier)
        self.unproved_true_reward = float(unproved_true_reward)

    # -- instances ---------------------------------------------------------------------
    def generate_instance(self, rng: np.random.Generator, level: str) -> ConjectureInstance:
        chosen = rng.choice(sorted(TEMPLATES), size=SEEDS_PER_INSTANCE, replace=False)
        seeds = []
        for name in chosen:
            statement, proof = make_problem(str(name), rng, level)
            seeds.append(SeedProblem(template=str(name), statement=statement, proof=proof))
        return ConjectureInstance(level=level, seeds=seeds)

    # -- rules -------------------------------------------------------------------------
    def initial_state(self, instance: ConjectureInstance) -> ConjectureState:
        return ConjectureState(instance=instance)

    def to_move(self, state: ConjectureState) -> list[str]:
        if self.is_terminal(state):
            return []
        return ["conjecturer"] if state.conjecture is None else ["prover"]

    def prompt(self, state: ConjectureState, seat: str) -> str:
        if seat == "conjecturer":
            seeds = "\n".join(f"- {s.statement}\n    proof: {s.proof}" for s in state.instance.seeds)
            return CONJECTURER_RULES.format(
                language=LANGUAGE, k=self.k, unproved=self.unproved_true_reward, seeds=seeds, example=CONJECTURE_EXAMPLE
            )
        assert state.statement is not None
        fmt = self.verifier.proof_format(state.statement)
        if not state.attempts:
            return PROVER_RULES.format(k=self.k, language=LANGUAGE, statement=state.statement.text, format=fmt)
        _, _, message = state.attempts[-1]
        n = len(state.attempts)
        return (
            f"Attempt {n} of {self.k} failed: {message}\n"
            f"Attempt {n + 1} of {self.k}. Statement: {state.statement.text}\nReply with exactly one line:\n{fmt}"
        )

    def parse_move(self, state: ConjectureState, seat: str, text: str) -> Move:
        text = unify_line_breaks(text)  # "\r", "\u2028", ... end a line as "\n" does
        if seat == "conjecturer":
            return self._parse_conjecture(text)
        assert state.statement is not None
        lines = _PROOF_RE.findall(text)
        fmt = self.verifier.proof_format(state.statement)
        if len(lines) != 1:
            count = "no line starts" if not lines else f"{len(lines)} lines start"
            raise InvalidMove(f'{count} with "PROOF:"; reply with exactly one line: {fmt}')
        try:
            self.verifier.parse_proof(state.statement, lines[0])
        except FormalError as err:
            raise InvalidMove(f"the proof is not well-formed: {err}. Reply with exactly one line: {fmt}") from None
        return Proof(text=lines[0])

    def _parse_conjecture(self, text: str) -> Conjecture:
        lines, witnesses = _CONJ_RE.findall(text), _WIT_RE.findall(text)
        if len(lines) != 1:
            count = "no line starts" if not lines else f"{len(lines)} lines start"
            raise InvalidMove(f'{count} with "CONJECTURE:"; write exactly one, {CONJECTURE_EXAMPLE}')
        if len(witnesses) > 1:
            raise InvalidMove(f'write at most one "WITNESS:" line, not {len(witnesses)}; {CONJECTURE_EXAMPLE}')
        try:
            statement = formal.parse_statement(lines[0])
        except FormalError as err:
            raise InvalidMove(f"the conjecture is not well-formed: {err}") from None
        unsupported = self.verifier.supports(statement)
        if unsupported:
            raise InvalidMove(f"the {self.verifier.name} verifier cannot check this statement: {unsupported}")
        truth = formal.decide(statement)
        if truth is False:
            reason = "the polynomial is irreducible" if statement.kind == "factor" else "the two sides differ when expanded"
            raise RuleViolation(f"the conjecture is false ({reason}); propose a true statement, {CONJECTURE_EXAMPLE}")
        witness = witnesses[0] if witnesses else None
        if witness is not None:
            try:
                verdict = self.verifier.verify(statement, self.verifier.parse_proof(statement, witness))
            except FormalError as err:
                raise InvalidMove(f"the witness is not well-formed: {err}") from None
            if not verdict.ok:
                raise RuleViolation(f"the witness does not prove the conjecture: {verdict.message}. Fix it or drop the WITNESS line")
            truth = True
        return Conjecture(statement=statement.text, witness=witness, known_true=bool(truth))

    def move_grammar(self, state: ConjectureState, seat: str) -> str | None:
        """The conjecturer's ``CONJECTURE:`` line (and optional ``WITNESS:`` line), or the
        prover's ``PROOF:`` line for the statement at hand (:mod:`.formal.grammar` has the
        language, its bounds and what no grammar can check). None when ``seat`` is not to
        move, or for a verifier other than the built-in certificate and Lean ones."""
        if seat not in self.to_move(state) or self.verifier.name not in ("certificate", "lean"):
            return None
        if seat == "conjecturer":
            return _conjecture_grammar(self.verifier.name)
        assert state.statement is not None
        proof, terminals = proof_terminal(state.statement, self.verifier.name)
        return grammar(f"{lit('PROOF: ')} {proof}", **terminals)

    def apply(self, state: ConjectureState, moves: Mapping[str, Move]) -> None:
        if state.conjecture is None:
            move = moves["conjecturer"]
            assert isinstance(move, Conjecture)
            state.conjecture = move
            state.statement = formal.parse_statement(move.statement)
            return
        move = moves["prover"]
        assert isinstance(move, Proof) and state.statement is not None
        verdict = self.verifier.verify(state.statement, self.verifier.parse_proof(state.statement, move.text))
        state.attempts.append((move.text, verdict.ok, verdict.message))
        if verdict.ok:
            state.proved_at = len(state.attempts)

    def is_terminal(self, state: ConjectureState) -> bool:
        return state.proved_at is not None or len(state.attempts) >= self.k

    def score(self, state: ConjectureState) -> Outcome:
        assert state.statement is not None and state.conjecture is not None
        proved = state.proved_at is not None
        success_rate = (self.k - state.proved_at + 1) / self.k if state.proved_at is not None else 0.0
        seed_keys = {formal.canonical_key(formal.parse_statement(s.statement)) for s in state.instance.seeds}
        copied = formal.canonical_key(state.statement) in seed_keys
        known_true = proved or state.conjecture.known_true
        if copied:
            conjecturer = 0.0
        elif proved:
            conjecturer = 1.0 - success_rate
        else:
            conjecturer = self.unproved_true_reward if known_true else 0.0
        size = formal.measures(state.statement)
        metrics = {
            "proved": float(proved),
            "success_rate": success_rate,
            "attempts_used": float(len(state.attempts)),
            "conjecture_valid": float(known_true),
            "witness_given": float(state.conjecture.witness is not None),
            "copied_seed": float(copied),
            "trivial": float(copied or state.proved_at == 1),
            "difficulty": size.difficulty,
            "num_vars": float(size.num_vars),
            "degree": float(size.degree),
            "max_digits": float(size.max_digits),
        }
        metrics.update({f"kind_{kind}": float(state.statement.kind == kind) for kind in ("exists", "disprove", "factor", "identity")})
        # The prover's reward falls with every attempt it needs, so a prover that could prove
        # at once never profits from failing first (which would pay the conjecturer more).
        return Outcome(rewards={"conjecturer": conjecturer, "prover": success_rate}, metrics=metrics)

    def view(self, state: ConjectureState, seat: str) -> dict[str, Any]:
        inst = state.instance
        if seat == "conjecturer":
            return {
                "level": inst.level,
                "prover_attempts": self.k,
                "verifier": self.verifier.name,
                "seeds": [s.model_dump() for s in inst.seeds],
            }
        return {
            "level": inst.level,
            "statement": state.statement.text if state.statement is not None else None,
            "attempt": len(state.attempts) + 1,
            "prover_attempts": self.k,
            "history": [{"proof": p, "message": m} for p, _, m in state.attempts],
        }


@cache
def _conjecture_grammar(verifier: str, sound: bool = False) -> str:
    """``CONJECTURE: <statement>``, then optionally ``WITNESS: <proof>`` in that statement's
    format; ``sound``: only the statements no semantic rule can refuse, without witness."""
    forms, terminals = conjecture_forms(verifier, sound)
    witness = lit("\nWITNESS: ")
    moves = " | ".join(f"{form.statement} ({witness} {form.witness})?" if form.witness else form.statement for form in forms)
    return grammar(f"{lit('CONJECTURE: ')} ({moves})", **terminals)


def register_games() -> None:
    from ..players.conjecture import PLAYERS
    from ..registry import register

    register("dialogym/ConjectureProver-v0", ConjectureProverGame, players=PLAYERS)
