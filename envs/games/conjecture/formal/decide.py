"""Truth of formulas and the built-in decision procedures.

:func:`holds` evaluates a formula once its variables are given (``=`` between expressions
with free indeterminates is identity of polynomials, ordering is for integers only);
:func:`explain_false` names the first failing conjunct, for a verdict a model can act on;
:func:`decide` settles ``factor`` and ``identity`` statements outright (the other kinds need
a certificate). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from .polynomials import Budget, Poly, constant_value, expand, factorization, poly_add, poly_text
from .syntax import BoolOp, Cmp, FormalError, Node, Not, Statement, to_text


def _compare(op: str, diff: Poly) -> bool:
    if op == "=":
        return not diff
    if op == "!=":
        return bool(diff)
    value = constant_value(diff)
    if value is None:
        raise FormalError(f'"{op}" compares polynomials; only = and != may involve indeterminates')
    return {"<": value < 0, "<=": value <= 0, ">": value > 0, ">=": value >= 0}[op]


def holds(formula: Node, env: Mapping[str, Poly], budget: Budget | None = None) -> bool:
    """Truth of ``formula`` after substituting ``env`` (``=`` is polynomial identity)."""
    budget = budget or Budget()
    if isinstance(formula, Cmp):
        values = [expand(a, env, budget) for a in formula.args]
        return all(_compare(op, poly_add(lhs, rhs, -1)) for op, lhs, rhs in zip(formula.ops, values, values[1:], strict=False))
    if isinstance(formula, BoolOp):
        results = (holds(a, env, budget) for a in formula.args)
        return all(results) if formula.op == "and" else any(results)
    if isinstance(formula, Not):
        return not holds(formula.arg, env, budget)
    raise FormalError(f"{to_text(formula)!r} is a number, not a comparison")


def explain_false(formula: Node, env: Mapping[str, Poly], budget: Budget | None = None) -> str:
    """A short reason why ``formula`` is false under ``env`` (first failing conjunct)."""
    budget = budget or Budget()
    parts = formula.args if isinstance(formula, BoolOp) and formula.op == "and" else (formula,)
    for part in parts:
        if not holds(part, env, budget):
            if isinstance(part, Cmp):
                shown = [poly_text(expand(a, env, budget)) for a in part.args]
                evaluated = " ".join(f"{v} {op}" for v, op in zip(shown, part.ops, strict=False)) + f" {shown[-1]}"
                return f"{to_text(part)!r} is false: it evaluates to {evaluated}"
            return f"{to_text(part)!r} is false"
    return "the formula is true"


def decide(st: Statement) -> bool | None:
    """Truth where the built-in checks can decide it: factor and identity; else None."""
    if st.kind == "factor":
        _, factors = factorization(expand(st.body))
        return sum(m for _, m in factors) >= 2
    if st.kind == "identity":
        assert isinstance(st.body, Cmp)
        left, right = (expand(a) for a in st.body.args)
        return left == right
    return None
