"""Scripted players of the conjecturer-prover game (:mod:`dialogym.envs.games.conjecture`).

``scripted_conjecturer`` perturbs a seed problem (same template and level, fresh numbers,
never a seed again up to expansion) and always adds its witness. ``scripted_prover`` is a
small solver, stronger at each attempt (:data:`SEARCH_BUDGETS`): backtracking search over
the quantified integers with integer root finding, exact division for polynomial
unknowns, factoring by rational roots (full factorisation from attempt 2), and a chain
through the expansion for identities (``A = <A expanded> = B``, or ``A = B`` when that does
not fit the proof limits); a stuck prover still sends a well-formed guess. The solver is
most of this module; it uses the pure formal language only
(:mod:`.formal`), never the Lean runner.

Each policy is ``(view, rng) -> reply``: it reads only the seat's ``view()`` dict and
draws any randomness from ``rng`` (see :mod:`dialogym.envs.games`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import formal
from .formal import FormalError, Statement
from .problems import make_problem


def scripted_conjecturer(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Perturbs a seed: the same template at the same level with fresh numbers and degree,
    never a statement equal (up to expansion) to a seed; always adds its witness."""
    seeds = view["seeds"]
    taken = {formal.canonical_key(formal.parse_statement(s["statement"])) for s in seeds}
    order = [seeds[int(i)]["template"] for i in rng.permutation(len(seeds))]
    for template in itertools.islice(itertools.cycle(order), 30):
        statement, proof = make_problem(template, rng, view["level"])
        if formal.canonical_key(formal.parse_statement(statement)) not in taken:
            return f"CONJECTURE: {statement}\nWITNESS: {proof}"
    statement, proof = make_problem("linear", rng, view["level"])
    return f"CONJECTURE: {statement}\nWITNESS: {proof}"


#: Search points the scripted prover may try at attempt 1, 2, 3, ...
SEARCH_BUDGETS = (300, 3_000, 20_000)


def scripted_prover(view: dict[str, Any], rng: np.random.Generator) -> str:
    """A solver, stronger at each attempt: bounded witness search with integer root finding
    (wider bounds each attempt), exact polynomial division, factoring by rational roots
    (then full factorisation from attempt 2), and a one-step chain for identities."""
    statement = formal.parse_statement(view["statement"])
    attempt = int(view.get("attempt", 1))
    failed = {h["proof"] for h in view.get("history", [])}
    proof = _prove(statement, attempt)
    if proof is None or proof in failed:
        proof = _guess(statement)
    return f"PROOF: {proof}"


def _prove(st: Statement, attempt: int) -> str | None:
    budget = SEARCH_BUDGETS[min(attempt, len(SEARCH_BUDGETS)) - 1]
    if st.kind == "identity":
        assert isinstance(st.body, formal.Cmp)
        lhs, rhs = (formal.to_text(a) for a in st.body.args)
        middle = formal.poly_text(formal.expand(st.body.args[0]))
        if middle in (lhs, rhs):
            return f"{lhs} = {rhs}"
        # The expanded middle can run past the proof's length or token limit (a product of
        # powers of long sums); the one-step chain is valid too, and as short as the statement.
        chain = f"{lhs} = {middle} = {rhs}"
        try:
            formal.parse_formula(chain, "the equality chain")
        except FormalError:
            return f"{lhs} = {rhs}"
        return chain
    if st.kind == "factor":
        return _factor(formal.expand(st.body), full=attempt >= 2)
    if st.kind == "exists" and st.domain == "poly":
        return _solve_polynomials(st)
    target = st.body if st.kind == "exists" else formal.negate(st.body)
    found = _search(st, target, budget)
    if found is None:
        return None
    return ", ".join(f"{v}={found[v]}" for v in st.variables)


def _guess(st: Statement) -> str:
    """A well-formed (probably wrong) proof, so a stuck prover still makes a valid move."""
    if st.kind in ("exists", "disprove"):
        return ", ".join(f"{v}=0" for v in st.variables)
    if st.kind == "factor":
        return formal.to_text(st.body)
    assert isinstance(st.body, formal.Cmp)
    return " = ".join(formal.to_text(a) for a in st.body.args)


# Compiled polynomial: list of (coefficient, ((variable index, exponent), ...)).
_Compiled = list[tuple[int, tuple[tuple[int, int], ...]]]


def _equations(target: formal.Node, names: tuple[str, ...]) -> list[formal.Poly]:
    """Polynomial equations (= 0) over ``names`` implied by the top-level conjuncts; an
    identity in free indeterminates gives one equation per coefficient."""
    out: list[formal.Poly] = []
    for part in formal.conjuncts(target):
        if not (isinstance(part, formal.Cmp) and part.ops == ("=",)):
            continue
        diff = formal.poly_add(formal.expand(part.args[0]), formal.expand(part.args[1]), -1)
        groups: dict[formal.Mono, formal.Poly] = {}
        for mono, c in diff.items():
            outer = tuple((v, e) for v, e in mono if v not in names)
            inner = tuple((v, e) for v, e in mono if v in names)
            groups.setdefault(outer, {})[inner] = c
        out.extend(g for g in groups.values() if g)
    return out


def _integer_roots(coefs: list[int]) -> list[int] | None:
    """Integer roots of sum(coefs[k] * v^k); None when every value is a root."""
    while coefs and coefs[-1] == 0:
        coefs = coefs[:-1]
    if not coefs:
        return None
    if len(coefs) == 1:
        return []
    if coefs[0] == 0:
        rest = _integer_roots(coefs[1:])
        return sorted({0, *(rest or [])})
    if len(coefs) == 2:
        c0, c1 = coefs
        return [-c0 // c1] if c0 % c1 == 0 else []
    if len(coefs) == 3:
        c0, c1, c2 = coefs
        disc = c1 * c1 - 4 * c2 * c0
        if disc < 0:
            return []
        s = math.isqrt(disc)
        if s * s != disc:
            return []
        return sorted({(-c1 + t) // (2 * c2) for t in (s, -s) if (-c1 + t) % (2 * c2) == 0})
    if max(abs(c) for c in coefs).bit_length() > 60:
        return []
    candidates = set()
    for root in np.roots([float(c) for c in reversed(coefs)]):
        if abs(root.imag) < 1e-6 * max(1.0, abs(root.real)) + 1e-6:
            base = int(round(root.real))
            candidates.update((base - 1, base, base + 1))
    return sorted(r for r in candidates if sum(c * r**k for k, c in enumerate(coefs)) == 0)


def _ordered(bound: int, natural: bool) -> list[int]:
    if natural:
        return list(range(bound + 1))
    return [0, *itertools.chain.from_iterable((i, -i) for i in range(1, bound + 1))]


def _search(st: Statement, target: formal.Node, budget: int) -> dict[str, int] | None:
    """Backtracking over the quantified integers: a variable that is the only unknown of an
    equation is solved by integer root finding, others are enumerated by size."""
    names = st.variables
    index = {v: i for i, v in enumerate(names)}
    compiled: list[_Compiled] = [
        [(c, tuple((index[v], e) for v, e in mono)) for mono, c in eq.items()] for eq in _equations(target, names)
    ]
    free_dims = max(1, len(names) - len(compiled))
    span = budget ** (1 / free_dims)
    natural = st.domain == "N"
    values = _ordered(max(2, int(span if natural else span / 2)), natural)
    counter = [0]
    assignment: list[int | None] = [None] * len(names)

    def consistent() -> bool:
        env = {v: formal.const(int(assignment[i])) for i, v in enumerate(names)}  # type: ignore[arg-type]
        try:
            return formal.holds(target, env)
        except FormalError:
            return False

    def solve_for(eq: _Compiled, var: int) -> list[int] | None:
        coefs: dict[int, int] = {}
        for c, mono in eq:
            term, power = c, 0
            for i, e in mono:
                if i == var:
                    power = e
                else:
                    term *= assignment[i] ** e  # type: ignore[operator]
            coefs[power] = coefs.get(power, 0) + term
        return _integer_roots([coefs.get(k, 0) for k in range(max(coefs, default=0) + 1)])

    def candidates() -> tuple[int, Iterator[int]]:
        for eq in compiled:
            unknown = {i for _, mono in eq for i, _ in mono if assignment[i] is None}
            if len(unknown) == 1:
                var = unknown.pop()
                roots = solve_for(eq, var)
                if roots is not None:
                    return var, iter(r for r in roots if not natural or r >= 0)
        var = next(i for i, a in enumerate(assignment) if a is None)
        return var, iter(values)

    def recurse() -> bool:
        if all(a is not None for a in assignment):
            counter[0] += 1
            return consistent()
        for eq in compiled:  # prune: a fully assigned equation must hold
            if all(assignment[i] is not None for _, mono in eq for i, _ in mono) and solve_for(eq, -1) == []:
                return False
        var, options = candidates()
        for value in options:
            counter[0] += 1
            if counter[0] > budget:
                return False
            assignment[var] = value
            if recurse():
                return True
            assignment[var] = None
        return False

    if recurse():
        return {v: int(assignment[i]) for i, v in enumerate(names)}  # type: ignore[arg-type]
    return None


def _solve_polynomials(st: Statement) -> str | None:
    """Solves equations linear in one unknown polynomial by exact division (over Q, integer result)."""
    import sympy

    solved: dict[str, formal.Poly] = {}
    gens = list(st.indeterminates)
    for part in formal.conjuncts(st.body):
        if not (isinstance(part, formal.Cmp) and part.ops == ("=",)):
            continue
        diff = formal.poly_add(formal.expand(part.args[0], solved), formal.expand(part.args[1], solved), -1)
        unknown = [v for v in st.variables if v not in solved and v in formal.variables_of(diff)]
        if len(unknown) != 1:
            continue
        q = unknown[0]
        if any(e > 1 for mono in diff for v, e in mono if v == q):
            continue
        slope = {tuple(p for p in m if p[0] != q): c for m, c in diff.items() if any(v == q for v, _ in m)}
        rest = formal.poly_add(diff, {m: c for m, c in diff.items() if any(v == q for v, _ in m)}, -1)
        quotient, remainder = sympy.div(
            formal.to_sympy({m: -c for m, c in rest.items()}, gens), formal.to_sympy(slope, gens)
        )
        if not remainder.is_zero or any(not c.is_integer for c in quotient.coeffs()):
            return None
        solved[q] = formal.from_sympy(sympy.Poly(quotient, *sympy.symbols(gens)), gens)
    if len(solved) != len(st.variables):
        return None
    return ", ".join(f"{v} = {formal.poly_text(solved[v])}" for v in st.variables)


def _factor(poly: formal.Poly, full: bool) -> str | None:
    """Rational-root factoring (univariate); with ``full`` the complete factorisation."""
    names = sorted(formal.variables_of(poly))
    if full or len(names) != 1:
        content, factors = formal.factorization(poly)
    else:
        content, factors = _rational_root_factors(poly, names[0])
    parts = [] if content == 1 else ["-1" if content == -1 else str(content)]
    for factor, mult in factors:
        text = f"({formal.poly_text(factor)})"
        parts.append(text if mult == 1 else f"{text}^{mult}")
    return "*".join(parts) if parts else None


def _rational_root_factors(poly: formal.Poly, var: str) -> tuple[int, list[tuple[formal.Poly, int]]]:
    """Split off linear factors a*x - b for the rational roots b/a found numerically; the
    rest is kept as one factor (irreducible when its degree is 2 or 3)."""
    from fractions import Fraction

    coefs = [0] * (formal.degree(poly) + 1)
    for mono, c in poly.items():
        coefs[mono[0][1] if mono else 0] = c
    content = math.gcd(*coefs) * (1 if coefs[-1] > 0 else -1)
    coefs = [c // content for c in coefs]
    factors: list[tuple[formal.Poly, int]] = []
    while len(coefs) > 2:
        found = None
        if coefs[0] == 0:
            found = Fraction(0)
        elif max(abs(c) for c in coefs).bit_length() <= 60:
            for root in np.roots([float(c) for c in reversed(coefs)]):
                if abs(root.imag) > 1e-6:
                    continue
                for den in (d for d in range(1, abs(coefs[-1]) + 1) if coefs[-1] % d == 0):
                    cand = Fraction(round(root.real * den), den)
                    if sum(c * cand**k for k, c in enumerate(coefs)) == 0:
                        found = cand
                        break
                if found is not None:
                    break
        if found is None:
            break
        a, b = found.denominator, found.numerator
        factors.append(({((var, 1),): a, **({(): -b} if b else {})}, 1))
        # synthetic division by x - b/a, highest degree first; by Gauss's lemma the
        # quotient divided by a has integer coefficients
        high = list(reversed(coefs))
        quotient = [Fraction(high[0])]
        for c in high[1:-1]:
            quotient.append(c + found * quotient[-1])
        coefs = [int(q / a) for q in reversed(quotient)]
    rest = {((var, k),) if k else (): c for k, c in enumerate(coefs) if c}
    if formal.degree(rest) >= 1:
        factors.append((rest, 1))
    merged: dict[str, tuple[formal.Poly, int]] = {}
    for f, m in factors:
        key = formal.poly_text(f)
        merged[key] = (f, merged.get(key, (f, 0))[1] + m)
    return content, list(merged.values())


PLAYERS = {"default": {"conjecturer": scripted_conjecturer, "prover": scripted_prover}}
