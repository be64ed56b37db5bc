"""Syntax of the formal language: bounds on text, tokens, syntax trees, parser and printer.

Pure and self-contained (no arithmetic, no I/O): model text is read here by a hand-written
tokenizer and Pratt parser, never by ``eval`` or ``sympify``, and every text bound
(:data:`MAX_TEXT_CHARS`, :data:`MAX_TOKENS`, :data:`MAX_DEPTH`, :data:`MAX_LITERAL_DIGITS`,
:data:`MAX_EXPONENT`) is checked before any work is done. :func:`to_text` prints a tree back
in canonical form. The tree walks every other module needs (:func:`free_names`,
:func:`negate`, :func:`conjuncts`) live here too, since they only look at the shape of a tree.
The grammar is in the package docstring (:mod:`dialogym.envs.games.conjecture.formal`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Union

MAX_TEXT_CHARS = 600
MAX_TOKENS = 250
MAX_DEPTH = 24
MAX_LITERAL_DIGITS = 40
MAX_EXPONENT = 64

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


# -- tree walks ----------------------------------------------------------------------------
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
