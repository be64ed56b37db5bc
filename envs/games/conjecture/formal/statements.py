"""Whole statements: parsing the four kinds, checking their bounds, and comparing them.

:func:`parse_statement` reads ``exists``/``disprove forall``/``factor``/``identity``
statements (grammar in the package docstring) and validates them: quantified variables
used and named once, at most :data:`MAX_VARS` variables, ordering only on integers, every
expression expandable within budget, and ``factor`` inputs small enough to factor quickly
(:data:`FACTOR_MAX_DEGREE`, :data:`FACTOR_MAX_VARS`, :data:`FACTOR_MAX_DIGITS`).
:func:`measures` gives a statement's size (the game's difficulty metric) and
:func:`canonical_key` the text that statements equal up to expansion share (to spot a copied
seed). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .polynomials import Budget, degree, expand, poly_add, poly_text, variables_of
from .syntax import (
    STATEMENT_EXAMPLE,
    BoolOp,
    Cmp,
    FormalError,
    Neg,
    Node,
    Not,
    Num,
    Pow,
    Prod,
    Statement,
    Sum,
    _describe,
    _Parser,
    _type_of,
    check_text,
    conjuncts,
    free_names,
    to_text,
    tokenize,
)

MAX_VARS = 6
#: ``factor`` statements: at most this degree and these many variables (keeps factoring fast).
FACTOR_MAX_DEGREE = 12
FACTOR_MAX_VARS = 2
FACTOR_MAX_DIGITS = 30


def parse_statement(text: str) -> Statement:
    """Parse and check a statement; raises :class:`FormalError` with a corrective example."""
    parser = _Parser(tokenize(check_text(text, "the statement").strip(), "the statement"))
    head = parser.peek()
    if head.kind == "name" and head.value in ("exists", "disprove"):
        parser.next()
        kind = head.value
        if kind == "disprove":
            parser.expect("forall", '"disprove forall x in N: x^2 - 5*x + 7 > 1"')
        variables = [parser.variable()]
        while parser.at(","):
            parser.next()
            variables.append(parser.variable())
        parser.expect("in", STATEMENT_EXAMPLE)
        domain, indeterminates = _domain(parser)
        parser.expect(":", STATEMENT_EXAMPLE)
        body = parser.expr()
        parser.expect_end(STATEMENT_EXAMPLE)
        if _type_of(body) != "bool":
            raise FormalError(f"after the colon write a condition, e.g. {STATEMENT_EXAMPLE}")
        st = Statement(kind, body, tuple(variables), domain, tuple(indeterminates))
    elif head.kind == "name" and head.value == "factor":
        parser.next()
        body = parser.expr()
        parser.expect_end('"factor x^2 - 5*x + 6"')
        if _type_of(body) != "num":
            raise FormalError('"factor" takes a polynomial, not a comparison; e.g. "factor x^2 - 5*x + 6"')
        st = Statement("factor", body)
    elif head.kind == "name" and head.value == "identity":
        parser.next()
        body = parser.expr()
        parser.expect_end('"identity (x + 1)^2 = x^2 + 2*x + 1"')
        if not (isinstance(body, Cmp) and body.ops == ("=",)):
            raise FormalError('"identity" takes one equation A = B; e.g. "identity (x + 1)^2 = x^2 + 2*x + 1"')
        _type_of(body)
        st = Statement("identity", body)
    else:
        raise FormalError(
            'a statement starts with "exists", "disprove forall", "factor" or "identity"; '
            f"e.g. {STATEMENT_EXAMPLE} or \"factor x^2 - 5*x + 6\""
        )
    _validate(st)
    return st


def _domain(parser: _Parser) -> tuple[str, list[str]]:
    tok = parser.next()
    if tok.kind == "name" and tok.value in ("Z", "N"):
        if not parser.at("["):
            return tok.value, []
        if tok.value == "Z":
            parser.next()
            names = [parser.variable()]
            while parser.at(","):
                parser.next()
                names.append(parser.variable())
            parser.expect("]", '"exists q in Z[x]: x^2 - 1 = (x - 1)*q"')
            return "poly", names
    raise FormalError(
        f'the domain must be Z (integers), N (integers >= 0) or Z[x] (polynomials in x), found {_describe(tok)}; '
        f"e.g. {STATEMENT_EXAMPLE}"
    )


def _validate(st: Statement) -> None:
    budget = Budget()
    if st.kind in ("exists", "disprove"):
        if len(set(st.variables)) != len(st.variables):
            raise FormalError("a variable is quantified twice; name each one once, e.g. exists x, y in Z: ...")
        if len(st.variables) + len(st.indeterminates) > MAX_VARS:
            raise FormalError(f"at most {MAX_VARS} variables are allowed")
        if set(st.variables) & set(st.indeterminates):
            raise FormalError("a quantified variable cannot also be an indeterminate of Z[...]")
        if st.kind == "disprove" and st.domain == "poly":
            raise FormalError('"disprove forall" ranges over Z or N only')
        used = free_names(st.body)
        unused = [v for v in st.variables if v not in used]
        if unused:
            raise FormalError(f"the quantified variable {unused[0]} does not appear in the condition; drop it")
        if st.domain == "poly":
            stray = sorted(used - set(st.variables) - set(st.indeterminates))
            if stray:
                raise FormalError(f"{stray[0]} is neither quantified nor listed in Z[...]; write e.g. Z[{stray[0]}]")
        integer_vars = set(st.variables) if st.domain != "poly" else set()
        for cmp in _comparisons(st.body):
            if any(op not in ("=", "!=") for op in cmp.ops):
                others = set().union(*(free_names(a) for a in cmp.args)) - integer_vars
                if others:
                    raise FormalError(
                        f"{to_text(cmp)!r} orders polynomials in {sorted(others)[0]}; <, <=, >, >= compare integers only"
                    )
            for arg in cmp.args:
                expand(arg, budget=budget)
    elif st.kind == "factor":
        poly = expand(st.body, budget=budget)
        names = variables_of(poly)
        if not names or degree(poly) < 2:
            raise FormalError('"factor" needs a polynomial of degree 2 or more, e.g. "factor x^2 - 5*x + 6"')
        if degree(poly) > FACTOR_MAX_DEGREE or len(names) > FACTOR_MAX_VARS:
            raise FormalError(f'"factor" takes polynomials of degree <= {FACTOR_MAX_DEGREE} in <= {FACTOR_MAX_VARS} variables')
        if max(len(str(abs(c))) for c in poly.values()) > FACTOR_MAX_DIGITS:
            raise FormalError(f'"factor" takes coefficients of at most {FACTOR_MAX_DIGITS} digits')
    else:
        assert isinstance(st.body, Cmp)
        for arg in st.body.args:
            expand(arg, budget=budget)


@dataclass(frozen=True)
class Measures:
    """Size of a statement; ``difficulty`` = variables + degree + digits of the largest number."""

    num_vars: int
    degree: int
    max_digits: int

    @property
    def difficulty(self) -> float:
        return float(self.num_vars + self.degree + self.max_digits)


def _numbers(node: Node) -> Iterator[int]:
    if isinstance(node, Num):
        yield node.value
    elif isinstance(node, Sum):
        for _, t in node.terms:
            yield from _numbers(t)
    elif isinstance(node, (Prod, Cmp, BoolOp)):
        for a in node.factors if isinstance(node, Prod) else node.args:
            yield from _numbers(a)
    elif isinstance(node, (Neg, Not)):
        yield from _numbers(node.arg)
    elif isinstance(node, Pow):
        yield from _numbers(node.base)


def measures(st: Statement) -> Measures:
    names = free_names(st.body) | set(st.variables) | set(st.indeterminates)
    if st.kind == "factor":
        polys = [expand(st.body)]
    else:
        polys = [expand(a) for c in _comparisons(st.body) for a in c.args]
    deg = max((degree(p) for p in polys), default=0)
    digits = max((len(str(abs(c))) for p in polys for c in p.values()), default=1)
    digits = max([digits, *(len(str(abs(n))) for n in _numbers(st.body))])
    return Measures(num_vars=len(names), degree=deg, max_digits=digits)


def canonical_key(st: Statement) -> str:
    """Text that equal-up-to-expansion statements share (to spot a copied seed)."""
    if st.kind == "factor":
        return "factor " + poly_text(expand(st.body))
    if st.kind == "identity":
        assert isinstance(st.body, Cmp)
        return "identity " + " = ".join(poly_text(expand(a)) for a in st.body.args)

    def norm(node: Node) -> str:
        if isinstance(node, Cmp):
            parts = [poly_text(poly_add(expand(a), expand(b), -1)) for a, b in zip(node.args, node.args[1:], strict=False)]
            return "&".join(f"{p} {op} 0" for p, op in zip(parts, node.ops, strict=True))
        if isinstance(node, BoolOp):
            parts = conjuncts(node) if node.op == "and" else node.args
            inner = sorted({norm(a) for a in parts})
            return f"{node.op}(" + ", ".join(inner) + ")"
        if isinstance(node, Not):
            return f"not({norm(node.arg)})"
        return to_text(node)

    domain = "poly[" + ",".join(st.indeterminates) + "]" if st.domain == "poly" else st.domain
    return f"{st.kind} {','.join(st.variables)} in {domain}: {norm(st.body)}"


def _comparisons(node: Node) -> Iterator[Cmp]:
    if isinstance(node, Cmp):
        yield node
    elif isinstance(node, BoolOp):
        for a in node.args:
            yield from _comparisons(a)
    elif isinstance(node, Not):
        yield from _comparisons(node.arg)
