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

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ...core import Game, Instance, InvalidMove, Move, Outcome, RuleViolation, unify_line_breaks
from ...grammar import grammar, lit
from . import formal
from .formal import FormalError, Statement, Verifier
from .formal.grammar import conjecture_forms, proof_terminal
from .problems import LEVELS, TEMPLATES, make_problem

#: Seed problems shown to the conjecturer, each from a different template.
SEEDS_PER_INSTANCE = 3


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

