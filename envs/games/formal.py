"""A small formal language of integer and polynomial statements, and verifiers for it.

Used by the conjecturer-prover game (:mod:`dialogym.envs.games.conjecture`). Model text is
read by a hand-written tokenizer and Pratt parser; nothing is ever passed to ``eval`` or
``sympify``. Every input is bounded before any work is done:

- plain printable ASCII only (fullwidth digits, superscripts, zero-width characters and
  homoglyph letters are rejected and named);
- at most :data:`MAX_TEXT_CHARS` characters, :data:`MAX_TOKENS` tokens and
  :data:`MAX_DEPTH` levels of nesting;
- exponents are digit literals up to :data:`MAX_EXPONENT`, chained powers are refused;
- expanding polynomials is charged to a work budget (:data:`MAX_WORK` coefficient
  products), and degree, term count and integer size (:data:`MAX_DIGITS`) are capped.

A violated bound raises :class:`FormalError` with a message written as a correction.

Statement grammar (``exists``/``disprove``/``factor``/``identity``)::

    statement := "exists" vars "in" domain ":" formula
               | "disprove" "forall" vars "in" domain ":" formula
               | "factor" expr
               | "identity" expr "=" expr
    vars      := name ("," name)*
    domain    := "Z" | "N" | "Z[" name ("," name)* "]"
    formula   := formula "or" formula | formula "and" formula | "not" formula
               | expr (relop expr)+ | "(" formula ")"
    relop     := "=" | "!=" | "<" | "<=" | ">" | ">="
    expr      := expr ("+" | "-") expr | expr "*" expr | ("-" | "+") expr
               | atom ("^" digits)? | "(" expr ")"
    atom      := digits | name          name := a lower-case letter, then digits (x, y, x1)

Variables that a statement does not quantify are polynomial indeterminates: ``=`` between
expressions that contain them means identity of polynomials, and ``<``-style comparisons
may only involve integer variables.

Certificates (what follows ``PROOF:``) with the built-in :class:`CertificateVerifier`:

- ``exists``/``disprove`` over ``Z`` or ``N``: values for every quantified variable,
  ``x=4, y=3`` (values are constant expressions); for ``disprove`` the values are a
  counterexample;
- ``exists`` over ``Z[x]``: polynomials for every variable, ``q = x^2 + x + 1``;
- ``factor P``: a product of factors, ``(x - 2)*(x - 3)`` or ``2*(x - 1)^2*(x + 3)``;
  the product must expand to ``P``, every non-constant factor must be irreducible over
  the rationals, and there must be at least two (counted with multiplicity);
- ``identity A = B``: a chain ``A = C = ... = B`` that starts with ``A`` and ends with
  ``B``; every step is checked by polynomial expansion.

:class:`LeanVerifier` shows how a formal prover plugs in: it states the claim as a Lean 4
theorem, runs ``lean`` on a temporary file with a timeout and accepts a proof only when
Lean reports no error and no ``sorry``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, Union, runtime_checkable

MAX_TEXT_CHARS = 600
MAX_TOKENS = 250
MAX_DEPTH = 24
MAX_LITERAL_DIGITS = 40
MAX_EXPONENT = 64
MAX_DIGITS = 300
MAX_BITS = int(MAX_DIGITS * math.log2(10)) + 1
MAX_DEGREE = 64
MAX_TERMS = 400
MAX_WORK = 200_000
MAX_VARS = 6
MAX_CHAIN_STEPS = 12
#: ``factor`` statements: at most this degree and these many variables (keeps factoring fast).
FACTOR_MAX_DEGREE = 12
FACTOR_MAX_VARS = 2
FACTOR_MAX_DIGITS = 30

KEYWORDS = frozenset({"exists", "forall", "disprove", "factor", "identity", "in", "and", "or", "not"})
RELOPS = ("=", "!=", "<", "<=", ">", ">=")
STATEMENT_EXAMPLE = '"exists x, y in Z: x^2 + y^2 = 25 and x > y"'


class FormalError(ValueError):
    """Text that is not a well-formed, bounded statement or certificate. Shown to models."""


# -- syntax trees --------------------------------------------------------------------------
@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Sum:
    terms: tuple[tuple[int, Node], ...]  # (sign +1/-1, term)


@dataclass(frozen=True)
class Prod:
    factors: tuple[Node, ...]


@dataclass(frozen=True)
class Neg:
    arg: Node


@dataclass(frozen=True)
class Pow:
    base: Node
    exp: int


@dataclass(frozen=True)
class Cmp:
    ops: tuple[str, ...]
    args: tuple[Node, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    arg: Node


Node = Union[Num, Var, Sum, Prod, Neg, Pow, Cmp, BoolOp, Not]


@dataclass(frozen=True)
class Statement:
    """A parsed, checked statement.

    ``kind`` is ``exists``, ``disprove``, ``factor`` or ``identity``; ``variables`` are the
    quantified ones, ``domain`` is ``"Z"``, ``"N"`` or ``"poly"`` (then ``indeterminates``
    names the polynomial ring); ``body`` is the formula (exists/disprove), the polynomial
    (factor) or a one-step ``Cmp`` (identity).
    """

    kind: str
    body: Node
    variables: tuple[str, ...] = ()
    domain: str = "Z"
    indeterminates: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return statement_text(self)


# -- tokens --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    kind: str  # "int" | "name" | "op" | "end"
    value: str
    pos: int


_TOKEN_RE = re.compile(r"(\d+)|([A-Za-z][A-Za-z0-9]*)|(\*\*|<=|>=|!=|==|[-+*^()=<>,:\[\]])")


def _char_error(ch: str, pos: int) -> FormalError:
    name = unicodedata.name(ch, "unnamed character")
    where = f"character {ch!r} (U+{ord(ch):04X} {name}) at position {pos}"
    if "SUPERSCRIPT" in name:
        hint = 'write powers with "^", e.g. x^2'
    elif unicodedata.category(ch) == "Nd" or "DIGIT" in name:
        hint = "write numbers with the ASCII digits 0-9"
    elif ch.isalpha():
        hint = "variables are ASCII letters a-z (this one only looks like one)"
    elif unicodedata.category(ch) in ("Cf", "Zs", "Cc"):
        hint = "remove invisible or special spacing characters"
    else:
        hint = "only ASCII digits, letters a-z, spaces and + - * ^ ( ) = != < <= > >= , : are allowed"
    return FormalError(f"{where} is not allowed; {hint}")


def check_text(text: str, what: str = "the statement") -> str:
    """Reject over-long or non-ASCII text before anything else looks at it."""
    if len(text) > MAX_TEXT_CHARS:
        raise FormalError(f"{what} is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}")
    for pos, ch in enumerate(text):
        if not (" " <= ch <= "~") and ch != "\t":
            raise _char_error(ch, pos)
    return text


def tokenize(text: str, what: str = "the statement") -> list[Token]:
    check_text(text, what)
    tokens: list[Token] = []
    pos, depth = 0, 0
    while pos < len(text):
        if text[pos] in " \t":
            pos += 1
            continue
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            ch = text[pos]
            hint = " (attribute access is not part of the language)" if ch in "._" else ""
            raise FormalError(
                f"unexpected character {ch!r} at position {pos}{hint}; use integers, variables like x or y1, "
                "+ - * ^ ( ), comparisons = != < <= > >=, and/or/not"
            )
        integer, name, op = match.groups()
        if integer is not None:
            if len(integer) > MAX_LITERAL_DIGITS:
                raise FormalError(f"the number at position {pos} has {len(integer)} digits; at most {MAX_LITERAL_DIGITS} are allowed")
            tokens.append(Token("int", integer, pos))
        elif name is not None:
            tokens.append(Token("name", name, pos))
        else:
            op = {"**": "^", "==": "="}.get(op, op)
            depth += op in "(["
            depth -= op in ")]"
            if depth > MAX_DEPTH:
                raise FormalError(f"brackets are nested more than {MAX_DEPTH} deep at position {pos}; simplify the expression")
            tokens.append(Token("op", op, pos))
        if len(tokens) > MAX_TOKENS:
            raise FormalError(f"{what} has more than {MAX_TOKENS} tokens; write something shorter")
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# -- parser --------------------------------------------------------------------------------
_LBP = {"or": 10, "and": 20, "=": 40, "!=": 40, "<": 40, "<=": 40, ">": 40, ">=": 40, "+": 50, "-": 50, "*": 60, "^": 80}
_NOT_BP, _NEG_BP = 30, 70
_VAR_RE = re.compile(r"^[a-z][0-9]*$")


def _describe(tok: Token) -> str:
    return "the end of the text" if tok.kind == "end" else f"{tok.value!r} at position {tok.pos}"


class _Parser:
    """Pratt parser over one token list; recursion depth is counted and capped."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at(self, value: str) -> bool:
        tok = self.peek()
        return tok.kind in ("op", "name") and tok.value == value

    def expect(self, value: str, example: str) -> Token:
        tok = self.next()
        if tok.kind not in ("op", "name") or tok.value != value:
            raise FormalError(f'expected "{value}" but found {_describe(tok)}; write e.g. {example}')
        return tok

    def expect_end(self, example: str) -> None:
        tok = self.peek()
        if tok.kind == "end":
            return
        if tok.kind in ("int", "name") or tok.value == "(":
            raise FormalError(f"missing operator before {_describe(tok)}: write 2*x, not 2x; e.g. {example}")
        raise FormalError(f"unexpected {_describe(tok)}; write e.g. {example}")

    def variable(self) -> str:
        tok = self.next()
        if tok.kind != "name" or tok.value in KEYWORDS or not _VAR_RE.match(tok.value):
            raise FormalError(
                f"expected a variable name (a lower-case letter, optionally followed by digits, e.g. x or y1) "
                f"but found {_describe(tok)}"
            )
        return tok.value

    def _lbp(self, tok: Token) -> int:
        if tok.kind in ("op", "name"):
            return _LBP.get(tok.value, 0)
        return 0

    def expr(self, rbp: int = 0) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormalError(f"the expression is nested more than {MAX_DEPTH} levels deep; simplify it")
        left = self._nud(self.next())
        while rbp < self._lbp(self.peek()):
            left = self._led(self.next(), left)
        self.depth -= 1
        return left

    def _nud(self, tok: Token) -> Node:
        if tok.kind == "int":
            return Num(int(tok.value))
        if tok.kind == "name":
            if tok.value == "not":
                return Not(self.expr(_NOT_BP))
            if tok.value in KEYWORDS or not _VAR_RE.match(tok.value):
                raise FormalError(
                    f"unknown word {tok.value!r} at position {tok.pos}; variables are a lower-case letter "
                    "optionally followed by digits (x, y, x1), and there are no functions"
                )
            return Var(tok.value)
        if tok.value == "(":
            inner = self.expr(0)
            close = self.next()
            if close.value != ")" or close.kind != "op":
                raise FormalError(f'expected ")" to close the "(" at position {tok.pos} but found {_describe(close)}')
            return inner
        if tok.value == "-":
            arg = self.expr(_NEG_BP)
            return Num(-arg.value) if isinstance(arg, Num) else Neg(arg)
        if tok.value == "+":
            return self.expr(_NEG_BP)
        raise FormalError(f"expected a number, a variable or \"(\" but found {_describe(tok)}")

    def _led(self, tok: Token, left: Node) -> Node:
        op = tok.value
        if op in ("+", "-"):
            right = self.expr(_LBP["+"])
            sign = 1 if op == "+" else -1
            terms = left.terms if isinstance(left, Sum) else ((1, left),)
            return Sum((*terms, (sign, right)))
        if op == "*":
            right = self.expr(_LBP["*"])
            factors = left.factors if isinstance(left, Prod) else (left,)
            return Prod((*factors, right))
        if op == "^":
            exp_tok = self.next()
            if exp_tok.kind != "int":
                raise FormalError(
                    f"the exponent at position {exp_tok.pos} must be a whole number 0..{MAX_EXPONENT} written "
                    "with digits, e.g. x^3"
                )
            exponent = int(exp_tok.value)
            if exponent > MAX_EXPONENT:
                raise FormalError(f"the exponent {exponent} at position {exp_tok.pos} is too large; at most {MAX_EXPONENT}")
            if self.at("^"):
                raise FormalError("chained powers like 2^3^2 are not allowed; use parentheses, e.g. (2^3)^2")
            return Pow(left, exponent)
        if op in RELOPS:
            ops, args = [op], [left, self.expr(_LBP["="])]
            while self.peek().kind == "op" and self.peek().value in RELOPS:
                ops.append(self.next().value)
                args.append(self.expr(_LBP["="]))
            return Cmp(tuple(ops), tuple(args))
        if op in ("and", "or"):
            right = self.expr(_LBP[op])
            args = left.args if isinstance(left, BoolOp) and left.op == op else (left,)
            return BoolOp(op, (*args, right))
        raise FormalError(f"unexpected {_describe(tok)}")  # pragma: no cover - _lbp guards this


def _type_of(node: Node) -> str:
    """``"num"`` or ``"bool"``; raises on a mix such as ``(x = 1) + 2``."""
    if isinstance(node, (Num, Var)):
        return "num"
    if isinstance(node, (Sum, Prod, Neg, Pow)):
        parts = [t for _, t in node.terms] if isinstance(node, Sum) else (
            list(node.factors) if isinstance(node, Prod) else [node.arg if isinstance(node, Neg) else node.base]
        )
        for part in parts:
            if _type_of(part) != "num":
                raise FormalError(f"arithmetic on a comparison or and/or in {to_text(node)!r}; compare numbers instead")
        return "num"
    if isinstance(node, Cmp):
        for part in node.args:
            if _type_of(part) != "num":
                raise FormalError(f"cannot compare the truth value {to_text(part)!r}; use and/or to combine comparisons")
        return "bool"
    parts = node.args if isinstance(node, BoolOp) else (node.arg,)
    for part in parts:
        if _type_of(part) != "bool":
            raise FormalError(f"{to_text(part)!r} is a number, not a comparison; write e.g. x > 0 and y > 0")
    return "bool"


def parse_expr(text: str, what: str = "the expression") -> Node:
    """Parse an arithmetic expression (no comparisons)."""
    parser = _Parser(tokenize(text, what))
    node = parser.expr()
    parser.expect_end("(x - 2)*(x - 3)")
    if _type_of(node) != "num":
        raise FormalError(f"{what} must be an arithmetic expression, not a comparison")
    return node


def parse_formula(text: str, what: str = "the formula") -> Node:
    parser = _Parser(tokenize(text, what))
    node = parser.expr()
    parser.expect_end("x^2 + y^2 = 25 and x > y")
    if _type_of(node) != "bool":
        raise FormalError(f"{what} must be a comparison such as x^2 + y^2 = 25, not a bare expression")
    return node


# -- printing ------------------------------------------------------------------------------
def _prec(node: Node) -> int:
    if isinstance(node, BoolOp):
        return _LBP[node.op]
    if isinstance(node, Not):
        return _NOT_BP
    if isinstance(node, Cmp):
        return 40
    if isinstance(node, Sum):
        return 50
    if isinstance(node, Prod):
        return 60
    if isinstance(node, Neg) or (isinstance(node, Num) and node.value < 0):
        return _NEG_BP
    if isinstance(node, Pow):
        return 80
    return 100


def to_text(node: Node) -> str:
    """Canonical text of a tree; parsing it back gives the same tree."""

    def wrap(child: Node, min_prec: int) -> str:
        text = to_text(child)
        return f"({text})" if _prec(child) < min_prec else text

    if isinstance(node, Num):
        return str(node.value)
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Sum):
        out = wrap(node.terms[0][1], 51) if node.terms[0][0] > 0 else "-" + wrap(node.terms[0][1], 71)
        for sign, term in node.terms[1:]:
            out += (" + " if sign > 0 else " - ") + wrap(term, 51)
        return out
    if isinstance(node, Prod):
        return "*".join(wrap(f, 61 if i else 60) for i, f in enumerate(node.factors))
    if isinstance(node, Neg):
        return "-" + wrap(node.arg, 71)
    if isinstance(node, Pow):
        return f"{wrap(node.base, 81)}^{node.exp}"
    if isinstance(node, Cmp):
        out = wrap(node.args[0], 41)
        for op, arg in zip(node.ops, node.args[1:], strict=True):
            out += f" {op} {wrap(arg, 41)}"
        return out
    if isinstance(node, BoolOp):
        p = _LBP[node.op]
        return f" {node.op} ".join(wrap(a, p + 1) for a in node.args)
    return "not " + wrap(node.arg, _NOT_BP)


def statement_text(st: Statement) -> str:
    if st.kind == "factor":
        return f"factor {to_text(st.body)}"
    if st.kind == "identity":
        return f"identity {to_text(st.body)}"
    domain = f"Z[{', '.join(st.indeterminates)}]" if st.domain == "poly" else st.domain
    head = "exists" if st.kind == "exists" else "disprove forall"
    return f"{head} {', '.join(st.variables)} in {domain}: {to_text(st.body)}"


# -- polynomials ---------------------------------------------------------------------------
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


# -- truth of formulas ---------------------------------------------------------------------
def free_names(node: Node) -> set[str]:
    if isinstance(node, Var):
        return {node.name}
    if isinstance(node, Num):
        return set()
    if isinstance(node, Sum):
        children: tuple[Node, ...] = tuple(t for _, t in node.terms)
    elif isinstance(node, (Prod,)):
        children = node.factors
    elif isinstance(node, (Cmp, BoolOp)):
        children = node.args
    elif isinstance(node, (Neg, Not)):
        children = (node.arg,)
    else:
        children = (node.base,)
    out: set[str] = set()
    for child in children:
        out |= free_names(child)
    return out


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


def negate(formula: Node) -> Node:
    """Logical negation pushed inwards (so a counterexample search sees plain comparisons)."""
    flip = {"=": "!=", "!=": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
    if isinstance(formula, Cmp) and len(formula.ops) == 1:
        return Cmp((flip[formula.ops[0]],), formula.args)
    if isinstance(formula, Cmp):
        pairs = [Cmp((op,), (a, b)) for op, a, b in zip(formula.ops, formula.args, formula.args[1:], strict=False)]
        return BoolOp("or", tuple(negate(p) for p in pairs))
    if isinstance(formula, BoolOp):
        return BoolOp("and" if formula.op == "or" else "or", tuple(negate(a) for a in formula.args))
    if isinstance(formula, Not):
        return formula.arg
    raise FormalError(f"{to_text(formula)!r} is not a formula")


def conjuncts(formula: Node) -> tuple[Node, ...]:
    if isinstance(formula, BoolOp) and formula.op == "and":
        return tuple(c for a in formula.args for c in conjuncts(a))
    if isinstance(formula, Cmp) and len(formula.ops) > 1:
        return tuple(Cmp((op,), (a, b)) for op, a, b in zip(formula.ops, formula.args, formula.args[1:], strict=False))
    return (formula,)


def _comparisons(node: Node) -> Iterator[Cmp]:
    if isinstance(node, Cmp):
        yield node
    elif isinstance(node, BoolOp):
        for a in node.args:
            yield from _comparisons(a)
    elif isinstance(node, Not):
        yield from _comparisons(node.arg)


# -- statements ----------------------------------------------------------------------------
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


# -- factorisation (sympy on structured data only; never on strings) --------------------
def _to_sympy(poly: Poly, names: list[str]) -> Any:
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


def _from_sympy(p: Any, names: list[str]) -> Poly:
    out: Poly = {}
    for exps, c in p.as_dict().items():
        mono = tuple((names[i], int(e)) for i, e in enumerate(exps) if e)
        out[mono] = int(c)
    return out


def is_irreducible(poly: Poly) -> bool:
    """Irreducible over the rationals (non-constant polynomials only)."""
    names = sorted(variables_of(poly))
    return bool(_to_sympy(poly, names).is_irreducible)


def factorization(poly: Poly) -> tuple[int, list[tuple[Poly, int]]]:
    """(content, [(irreducible factor, multiplicity)]) of a polynomial over Z."""
    names = sorted(variables_of(poly))
    coeff, factors = _to_sympy(poly, names).factor_list()
    return int(coeff), [(_from_sympy(f, names), int(m)) for f, m in factors]


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


# -- verifiers -----------------------------------------------------------------------------
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


# -- Lean 4 ----------------------------------------------------------------------------------
#: Words a proof may not contain: commands that run code, change the environment or cheat.
LEAN_FORBIDDEN = (
    "sorry", "admit", "axiom", "native_decide", "ofReduceBool", "implemented_by", "extern", "unsafe",
    "import", "open", "set_option", "macro", "syntax", "elab", "run_", "initialize", "IO", "Lean.",
    "#", "`(", "@[", "theorem", "def ", "instance", "notation", "attribute", "namespace", "section",
)
LEAN_MAX_PROOF_CHARS = 2000


def _lean_expr(node: Node) -> str:
    if isinstance(node, Num):
        return f"({node.value})" if node.value < 0 else str(node.value)
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Sum):
        out = _lean_expr(node.terms[0][1]) if node.terms[0][0] > 0 else f"-{_lean_expr(node.terms[0][1])}"
        for sign, term in node.terms[1:]:
            out += (" + " if sign > 0 else " - ") + _lean_expr(term)
        return f"({out})"
    if isinstance(node, Prod):
        return "(" + " * ".join(_lean_expr(f) for f in node.factors) + ")"
    if isinstance(node, Neg):
        return f"(-{_lean_expr(node.arg)})"
    if isinstance(node, Pow):
        return f"({_lean_expr(node.base)} ^ {node.exp})"
    if isinstance(node, Cmp):
        ops = {"=": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"}
        pairs = [f"{_lean_expr(a)} {ops[op]} {_lean_expr(b)}" for op, a, b in zip(node.ops, node.args, node.args[1:], strict=False)]
        return "(" + " ∧ ".join(pairs) + ")"
    if isinstance(node, BoolOp):
        return "(" + (" ∧ " if node.op == "and" else " ∨ ").join(_lean_expr(a) for a in node.args) + ")"
    return f"(¬ {_lean_expr(node.arg)})"


def lean_proposition(st: Statement) -> str:
    """The statement as a Lean 4 proposition over ``Int`` (core Lean, no Mathlib)."""
    if st.kind == "identity":
        names = sorted(free_names(st.body))
        body = _lean_expr(st.body)
        return f"∀ {' '.join(names)} : Int, {body}" if names else body
    if st.kind not in ("exists", "disprove") or st.domain == "poly":
        raise FormalError(f"the Lean verifier cannot state {st.kind} statements over {st.domain}")
    indeterminates = sorted(free_names(st.body) - set(st.variables))
    body = _lean_expr(st.body)
    if indeterminates:  # polynomial identity in the indeterminates = equality at every integer
        body = f"(∀ {' '.join(indeterminates)} : Int, {body})"
    if st.domain == "N":  # natural numbers as non-negative integers: Nat subtraction truncates
        body = "(" + " ∧ ".join([*(f"0 ≤ {v}" for v in st.variables), body]) + ")"
    binder = f"{' '.join(st.variables)} : Int"
    if st.kind == "exists":
        return f"∃ {binder}, {body}"
    return f"¬ (∀ {binder}, {body})"


def _lean_differs(st: Statement) -> str | None:
    """Why the Lean reading of ``st`` could differ from the certificate verifier's, if it can.

    Over indeterminates the certificate verifier reads ``p = q`` as "the same polynomial",
    which Lean's ``∀ x : Int, p = q`` matches (a polynomial that vanishes on every integer
    is zero; for ``or`` too, since a product of non-zero polynomials is non-zero). But
    ``p != q`` means "not the same polynomial" there, and ``∀ x : Int, p ≠ q`` is much
    stronger (``x != 0`` is true as polynomials, false at x = 0); ``not`` likewise.
    """
    indeterminates = free_names(st.body) - set(st.variables)
    if st.kind in ("exists", "disprove") and _negated_over(st.body, indeterminates, negated=False):
        return (
            "over indeterminates, != and not mean 'not the same polynomial' here but 'differs at every "
            "integer' in Lean; use = (or <, > on quantified integers) only, or the certificate verifier"
        )
    return None


def _negated_over(node: Node, names: set[str], negated: bool) -> bool:
    """Whether a ``!=`` or a ``not`` in ``node`` applies to a comparison that mentions ``names``."""
    if isinstance(node, Not):
        return _negated_over(node.arg, names, True)
    if isinstance(node, BoolOp):
        return any(_negated_over(a, names, negated) for a in node.args)
    return isinstance(node, Cmp) and (negated or "!=" in node.ops) and bool(free_names(node) & names)


class LeanVerifier:
    """Checks Lean 4 proofs by running ``lean`` on a temporary file.

    The prover's ``PROOF:`` text is a tactic proof (what follows ``by``), e.g.
    ``exact ⟨4, 3, by decide⟩``. It must be one line, at most
    :data:`LEAN_MAX_PROOF_CHARS` characters, and free of :data:`LEAN_FORBIDDEN` words, so it
    cannot leave the ``by`` block to run commands. A proof passes when ``lean`` exits 0
    within ``timeout_s`` and ``#print axioms`` shows no ``sorryAx``.
    """

    name = "lean"

    def __init__(self, executable: str = "lean", timeout_s: float = 30.0) -> None:
        self.executable = executable
        self.timeout_s = timeout_s

    @property
    def available(self) -> bool:
        return shutil.which(self.executable) is not None

    def supports(self, statement: Statement) -> str | None:
        try:
            lean_proposition(statement)
        except FormalError as err:
            return str(err)
        return _lean_differs(statement)

    def proof_format(self, statement: Statement) -> str:
        return "PROOF: <a Lean 4 tactic proof on one line, e.g. exact ⟨4, 3, by decide⟩>"

    def parse_proof(self, statement: Statement, text: str) -> str:
        text = text.strip()
        if not text:
            raise FormalError("the proof is empty; write a Lean 4 tactic proof, e.g. PROOF: exact ⟨4, 3, by decide⟩")
        if len(text) > LEAN_MAX_PROOF_CHARS:
            raise FormalError(f"the Lean proof has {len(text)} characters; the limit is {LEAN_MAX_PROOF_CHARS}")
        if any(ch in text for ch in "\n\r") or any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
            raise FormalError("the Lean proof must be one line of visible characters; join tactics with ';' or '<;>'")
        for word in LEAN_FORBIDDEN:
            if word in text:
                raise FormalError(f"the Lean proof may not contain {word.strip()!r}")
        return text

    def source(self, statement: Statement, proof: str) -> str:
        return f"theorem conjecture : {lean_proposition(statement)} := by\n  {proof}\n\n#print axioms conjecture\n"

    def verify(self, statement: Statement, proof: Any) -> Verdict:
        exe = shutil.which(self.executable)
        if exe is None:
            return Verdict(False, f"the Lean executable {self.executable!r} is not on the PATH")
        with tempfile.TemporaryDirectory(prefix="dialogym-lean-") as tmp:
            path = os.path.join(tmp, "Conjecture.lean")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(self.source(statement, proof))
            try:
                run = subprocess.run(
                    [exe, path], cwd=tmp, capture_output=True, text=True, timeout=self.timeout_s, stdin=subprocess.DEVNULL
                )
            except subprocess.TimeoutExpired:
                return Verdict(False, f"Lean did not finish within {self.timeout_s:g} s")
        output = (run.stdout + run.stderr).strip()
        if run.returncode != 0 or "error" in output.lower():
            first = next((line for line in output.splitlines() if "error" in line.lower()), output[:200])
            return Verdict(False, f"Lean rejected the proof: {first[:300]}")
        if "sorry" in output:
            return Verdict(False, "Lean accepted the proof only with sorry")
        return Verdict(True, "verified by Lean")


def make_verifier(spec: str | Verifier) -> Verifier:
    """``"certificate"`` (built in), ``"lean"`` (needs ``lean`` on the PATH) or a verifier object."""
    if not isinstance(spec, str):
        if not isinstance(spec, Verifier):
            raise TypeError(f"verifier must be 'certificate', 'lean' or a Verifier, got {spec!r}")
        return spec
    if spec == "certificate":
        return CertificateVerifier()
    if spec == "lean":
        verifier = LeanVerifier()
        if not verifier.available:
            raise ValueError("verifier='lean' needs a Lean 4 'lean' executable on the PATH (see https://lean-lang.org)")
        return verifier
    raise ValueError(f"unknown verifier {spec!r}; choose 'certificate' or 'lean'")
