"""Verifiers: the :class:`Verifier` protocol and the built-in :class:`CertificateVerifier`.

A verifier turns a prover's ``PROOF:`` text into a proof object (:meth:`Verifier.parse_proof`,
whose errors are format errors the game re-prompts) and decides it (:meth:`Verifier.verify`,
a spent attempt). The certificate verifier checks witnesses, counterexamples, factorisations
and equality chains (at most :data:`MAX_CHAIN_STEPS` steps) exactly, by integer and
polynomial arithmetic; it is pure. :func:`make_verifier` builds one by name; only
``"lean"`` imports :mod:`.lean`, the one module here that runs a subprocess.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .decide import explain_false, holds
from .polynomials import Budget, constant_value, expand, is_irreducible, poly_text
from .syntax import (
    _LBP,
    Cmp,
    FormalError,
    Neg,
    Node,
    Num,
    Pow,
    Prod,
    Statement,
    _Parser,
    _type_of,
    free_names,
    parse_expr,
    parse_formula,
    to_text,
    tokenize,
)

MAX_CHAIN_STEPS = 12


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


@runtime_checkable
class Verifier(Protocol):
    """Checks proofs of statements. ``parse_proof`` rejects malformed text (a format error,
    re-prompted by the game); ``verify`` decides a well-formed proof (a spent attempt)."""

    name: str

    def supports(self, statement: Statement) -> str | None:
        """None when this verifier can check proofs of ``statement``, else the reason why not."""

    def parse_proof(self, statement: Statement, text: str) -> Any: ...

    def verify(self, statement: Statement, proof: Any) -> Verdict: ...

    def proof_format(self, statement: Statement) -> str:
        """One line telling a prover how to write a proof of ``statement``."""


@dataclass(frozen=True)
class Assignment:
    values: tuple[tuple[str, Node], ...]


_ASSIGN_EXAMPLE = {"Z": "x=4, y=3", "N": "x=4, y=3", "poly": "q = x^2 + x + 1"}


def parse_assignment(statement: Statement, text: str) -> Assignment:
    parser = _Parser(tokenize(text, "the proof"))
    example = ", ".join(f"{v}=..." for v in statement.variables)
    values: dict[str, Node] = {}
    while True:
        name = parser.variable()
        if name not in statement.variables:
            raise FormalError(f"{name} is not a quantified variable of the statement; give values for {example}")
        if name in values:
            raise FormalError(f"{name} is given twice; write e.g. {example}")
        parser.expect("=", example)
        node = parser.expr(_LBP["="])
        if _type_of(node) != "num":
            raise FormalError(f"the value of {name} must be a number or polynomial, not a comparison")
        allowed = set(statement.indeterminates) if statement.domain == "poly" else set()
        stray = free_names(node) - allowed
        if stray:
            what = f"polynomials in {', '.join(statement.indeterminates)}" if allowed else "integers"
            raise FormalError(f"the value of {name} uses {sorted(stray)[0]}; values must be {what}")
        values[name] = node
        if parser.peek().kind == "end":
            break
        if not (parser.at(",") or parser.at("and")):
            parser.expect_end(example)
        parser.next()
    missing = [v for v in statement.variables if v not in values]
    if missing:
        raise FormalError(f"the proof gives no value for {missing[0]}; write e.g. {example}")
    return Assignment(tuple((v, values[v]) for v in statement.variables))


def _factors(node: Node, mult: int = 1) -> Iterator[tuple[Node, int]]:
    if isinstance(node, Prod):
        for f in node.factors:
            yield from _factors(f, mult)
    elif isinstance(node, Pow):
        yield from _factors(node.base, mult * node.exp)
    elif isinstance(node, Neg):
        yield Num(-1), 1
        yield from _factors(node.arg, mult)
    else:
        yield node, mult


class CertificateVerifier:
    """The built-in verifier: witnesses, factorisations, counterexamples and equality chains,
    all checked exactly by integer and polynomial arithmetic."""

    name = "certificate"

    def supports(self, statement: Statement) -> str | None:
        return None

    def proof_format(self, statement: Statement) -> str:
        if statement.kind == "exists" and statement.domain == "poly":
            return f"PROOF: {', '.join(f'{v} = <polynomial in {statement.indeterminates[0]}>' for v in statement.variables)}  (e.g. PROOF: q = x^2 + x + 1)"
        if statement.kind == "exists":
            return f"PROOF: {', '.join(f'{v}=<integer>' for v in statement.variables)}  (values that make the condition true)"
        if statement.kind == "disprove":
            return f"PROOF: {', '.join(f'{v}=<integer>' for v in statement.variables)}  (a counterexample: values that make the condition false)"
        if statement.kind == "factor":
            return "PROOF: <product of irreducible factors>  (e.g. PROOF: 2*(x - 1)^2*(x + 3))"
        return "PROOF: <left side> = <step> = ... = <right side>  (each step is checked by expanding both sides)"

    def parse_proof(self, statement: Statement, text: str) -> Any:
        if statement.kind in ("exists", "disprove"):
            return parse_assignment(statement, text)
        if statement.kind == "factor":
            return parse_expr(text, "the factorisation")
        chain = parse_formula(text, "the equality chain")
        if not (isinstance(chain, Cmp) and set(chain.ops) == {"="}):
            raise FormalError("an identity proof is a chain of equalities, e.g. PROOF: (x + 1)^2 = (x + 1)*(x + 1) = x^2 + 2*x + 1")
        if len(chain.ops) > MAX_CHAIN_STEPS:
            raise FormalError(f"the chain has {len(chain.ops)} steps; at most {MAX_CHAIN_STEPS} are allowed")
        return chain

    def verify(self, statement: Statement, proof: Any) -> Verdict:
        try:
            return self._verify(statement, proof)
        except FormalError as err:
            return Verdict(False, f"the verifier could not evaluate the proof: {err}")

    def _verify(self, st: Statement, proof: Any) -> Verdict:
        budget = Budget()
        if st.kind in ("exists", "disprove"):
            env = {name: expand(node, budget=budget) for name, node in proof.values}
            shown = ", ".join(f"{n}={poly_text(p)}" for n, p in env.items())
            if st.domain == "N":
                negative = [n for n, p in env.items() if (constant_value(p) or 0) < 0]
                if negative:
                    return Verdict(False, f"{negative[0]} must be a natural number (>= 0), got {poly_text(env[negative[0]])}")
            truth = holds(st.body, env, budget)
            if st.kind == "exists":
                return Verdict(True, f"verified: {shown} satisfies the condition") if truth else Verdict(
                    False, f"with {shown}: {explain_false(st.body, env, budget)}"
                )
            if truth:
                return Verdict(False, f"{shown} is not a counterexample: the condition holds for these values")
            return Verdict(True, f"verified: {shown} is a counterexample")
        if st.kind == "factor":
            target = expand(st.body, budget=budget)
            product = expand(proof, budget=budget)
            if product != target:
                return Verdict(False, f"the product expands to {poly_text(product)}, not {poly_text(target)}")
            nonconstant = 0
            for node, mult in _factors(proof):
                poly = expand(node, budget=budget)
                if constant_value(poly) is not None:
                    continue
                if not is_irreducible(poly):
                    return Verdict(False, f"the factor {to_text(node)} is not irreducible; factor it further")
                nonconstant += mult
            if nonconstant < 2:
                return Verdict(False, "a factorisation needs at least two non-constant factors")
            return Verdict(True, "verified: the product matches and every factor is irreducible")
        assert isinstance(st.body, Cmp)
        chain: Cmp = proof
        if to_text(chain.args[0]) != to_text(st.body.args[0]) or to_text(chain.args[-1]) != to_text(st.body.args[1]):
            return Verdict(
                False,
                f"the chain must start with {to_text(st.body.args[0])} and end with {to_text(st.body.args[1])}",
            )
        for i, (a, b) in enumerate(zip(chain.args, chain.args[1:], strict=False), start=1):
            left, right = expand(a, budget=budget), expand(b, budget=budget)
            if left != right:
                return Verdict(
                    False, f"step {i} fails: {to_text(a)} expands to {poly_text(left)} but {to_text(b)} to {poly_text(right)}"
                )
        return Verdict(True, f"verified: all {len(chain.ops)} steps hold")


def make_verifier(spec: str | Verifier) -> Verifier:
    """``"certificate"`` (built in), ``"lean"`` (needs ``lean`` on the PATH) or a verifier object."""
    if not isinstance(spec, str):
        if not isinstance(spec, Verifier):
            raise TypeError(f"verifier must be 'certificate', 'lean' or a Verifier, got {spec!r}")
        return spec
    if spec == "certificate":
        return CertificateVerifier()
    if spec == "lean":
        from .lean import LeanVerifier

        verifier = LeanVerifier()
        if not verifier.available:
            raise ValueError("verifier='lean' needs a Lean 4 'lean' executable on the PATH (see https://lean-lang.org)")
        return verifier
    raise ValueError(f"unknown verifier {spec!r}; choose 'certificate' or 'lean'")
