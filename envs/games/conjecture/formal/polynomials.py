"""Polynomials over the integers: exact, bounded arithmetic and the bridge to sympy.

A polynomial is a plain dict from monomials (sorted ``(variable, exponent)`` pairs) to
non-zero integer coefficients. Expanding a syntax tree (:func:`expand`) is charged to a
:class:`Budget` of :data:`MAX_WORK` coefficient products, and degree (:data:`MAX_DEGREE`),
term count (:data:`MAX_TERMS`) and integer size (:data:`MAX_DIGITS`) are capped, so hostile
input fails fast with a :class:`~.syntax.FormalError`. Factorisation hands sympy structured
data only (:func:`to_sympy`), never strings. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .syntax import FormalError, Neg, Node, Num, Pow, Prod, Sum, Var, to_text

MAX_DIGITS = 300
MAX_BITS = int(MAX_DIGITS * math.log2(10)) + 1
MAX_DEGREE = 64
MAX_TERMS = 400
MAX_WORK = 200_000


Mono = tuple[tuple[str, int], ...]
Poly = dict[Mono, int]


class Budget:
    """Work charged while expanding: one unit per coefficient product."""

    def __init__(self, limit: int = MAX_WORK) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, units: int) -> None:
        self.used += units
        if self.used > self.limit:
            raise FormalError(f"expanding this takes more than {self.limit} steps; use smaller degrees or fewer terms")


def _check_int(value: int) -> int:
    if value.bit_length() > MAX_BITS:
        raise FormalError(f"a number in the computation has more than {MAX_DIGITS} digits; use smaller numbers or exponents")
    return value


def mono_degree(mono: Mono) -> int:
    return sum(e for _, e in mono)


def degree(poly: Poly) -> int:
    return max((mono_degree(m) for m in poly), default=0)


def variables_of(poly: Poly) -> set[str]:
    return {v for m in poly for v, _ in m}


def _mono_mul(a: Mono, b: Mono) -> Mono:
    if not a:
        return b
    if not b:
        return a
    merged = dict(a)
    for v, e in b:
        merged[v] = merged.get(v, 0) + e
    return tuple(sorted(merged.items()))


def const(value: int) -> Poly:
    return {(): value} if value else {}


def poly_var(name: str) -> Poly:
    return {((name, 1),): 1}


def poly_add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for m, c in b.items():
        value = out.get(m, 0) + sign * c
        if value:
            out[m] = _check_int(value)
        else:
            out.pop(m, None)
    return out


def poly_mul(a: Poly, b: Poly, budget: Budget) -> Poly:
    if not a or not b:
        return {}
    if degree(a) + degree(b) > MAX_DEGREE:
        raise FormalError(f"a polynomial in the computation has degree above {MAX_DEGREE}; use smaller degrees")
    if max(abs(c) for c in a.values()).bit_length() + max(abs(c) for c in b.values()).bit_length() > MAX_BITS + 32:
        raise FormalError(f"a number in the computation has more than {MAX_DIGITS} digits; use smaller numbers or exponents")
    budget.spend(len(a) * len(b))
    out: Poly = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m = _mono_mul(ma, mb)
            out[m] = out.get(m, 0) + ca * cb
    out = {m: _check_int(c) for m, c in out.items() if c}
    if len(out) > MAX_TERMS:
        raise FormalError(f"a polynomial in the computation has more than {MAX_TERMS} terms; use fewer variables or lower degrees")
    return out


def poly_pow(a: Poly, exp: int, budget: Budget) -> Poly:
    if exp == 0:
        return const(1)
    if not a:
        return {}
    if len(a) == 1 and () in a:
        base = a[()]
        if abs(base) > 1 and (abs(base).bit_length() - 1) * exp > MAX_BITS:
            raise FormalError(f"{base}^{exp} has more than {MAX_DIGITS} digits; use smaller numbers or exponents")
        budget.spend(exp)
        return {(): _check_int(base**exp)}
    if degree(a) * exp > MAX_DEGREE:
        raise FormalError(f"a power of degree {degree(a) * exp} exceeds the degree limit {MAX_DEGREE}")
    out = a
    for _ in range(exp - 1):
        out = poly_mul(out, a, budget)
    return out


def expand(node: Node, env: Mapping[str, Poly] | None = None, budget: Budget | None = None) -> Poly:
    """The polynomial of an arithmetic tree, with ``env`` substituted for variables."""
    env = env or {}
    budget = budget or Budget()

    def go(n: Node) -> Poly:
        if isinstance(n, Num):
            return const(_check_int(n.value))
        if isinstance(n, Var):
            return dict(env[n.name]) if n.name in env else poly_var(n.name)
        if isinstance(n, Sum):
            out: Poly = {}
            for sign, term in n.terms:
                budget.spend(1)
                out = poly_add(out, go(term), sign)
            return out
        if isinstance(n, Prod):
            out = const(1)
            for factor in n.factors:
                out = poly_mul(out, go(factor), budget)
            return out
        if isinstance(n, Neg):
            return {m: -c for m, c in go(n.arg).items()}
        if isinstance(n, Pow):
            return poly_pow(go(n.base), n.exp, budget)
        raise FormalError(f"{to_text(n)!r} is a comparison, not a number")

    return go(node)


def poly_text(poly: Poly) -> str:
    """Readable text of a polynomial, highest degree first (parses back to the same one)."""
    if not poly:
        return "0"
    monos = sorted(poly, key=lambda m: (-mono_degree(m), tuple((v, -e) for v, e in m)))
    parts: list[str] = []
    for i, m in enumerate(monos):
        c = poly[m]
        body = "*".join(v if e == 1 else f"{v}^{e}" for v, e in m)
        magnitude = abs(c)
        if not body:
            term = str(magnitude)
        elif magnitude == 1:
            term = body
        else:
            term = f"{magnitude}*{body}"
        if i == 0:
            parts.append(("-" if c < 0 else "") + term)
        else:
            parts.append((" - " if c < 0 else " + ") + term)
    return "".join(parts)


def constant_value(poly: Poly) -> int | None:
    if not poly:
        return 0
    if len(poly) == 1 and () in poly:
        return poly[()]
    return None


# -- factorisation (sympy on structured data only; never on strings) --------------------
def to_sympy(poly: Poly, names: list[str]) -> Any:
    import sympy

    gens = sympy.symbols(names)
    index = {n: i for i, n in enumerate(names)}
    data = {}
    for mono, c in poly.items():
        exps = [0] * len(names)
        for v, e in mono:
            exps[index[v]] = e
        data[tuple(exps)] = c
    return sympy.Poly.from_dict(data, *gens, domain="ZZ")


def from_sympy(p: Any, names: list[str]) -> Poly:
    out: Poly = {}
    for exps, c in p.as_dict().items():
        mono = tuple((names[i], int(e)) for i, e in enumerate(exps) if e)
        out[mono] = int(c)
    return out


def is_irreducible(poly: Poly) -> bool:
    """Irreducible over the rationals (non-constant polynomials only)."""
    names = sorted(variables_of(poly))
    return bool(to_sympy(poly, names).is_irreducible)


def factorization(poly: Poly) -> tuple[int, list[tuple[Poly, int]]]:
    """(content, [(irreducible factor, multiplicity)]) of a polynomial over Z."""
    names = sorted(variables_of(poly))
    coeff, factors = to_sympy(poly, names).factor_list()
    return int(coeff), [(from_sympy(f, names), int(m)) for f, m in factors]
