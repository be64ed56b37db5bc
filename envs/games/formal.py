"""A small, safe formal language for conjectures over the integers, and its verifiers.

Nothing here evaluates model text as Python: a hand-written tokenizer and precedence-climbing
parser accept only ASCII integers, the variables ``w x y z``, ``+ - * ^``, parentheses,
comparisons and ``and``. Every resource is bounded before it is spent: input length, token
count, nesting depth, exponent, degree, number of terms and digits of every coefficient,
so a hostile or huge expression is rejected with a clear message and never hangs a run.

Statements::

    exists x, y: x^2 + y^2 = 25 and x > y      certificate: x=4, y=3
    factor x^2 - 5*x + 6                       certificate: (x-2)*(x-3)

A factorisation certificate must expand to the polynomial and have at least two
non-constant factors. Polynomials are dicts from exponent tuples to integer coefficients.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

VARIABLES = ("w", "x", "y", "z")
MAX_CHARS = 400
MAX_TOKENS = 200
MAX_DEPTH = 24
MAX_EXPONENT = 12
MAX_DEGREE = 24
MAX_TERMS = 400
MAX_DIGITS = 60
MAX_WITNESS = 10**12
COMPARISONS = ("<=", ">=", "!=", "=", "<", ">")

Poly = dict[tuple[int, ...], int]
_TOKEN_RE = re.compile(r"\s*(?:(\d+)|([a-z]+)|(<=|>=|!=|[-+*^()=<>,:]))")


class FormalError(ValueError):
    """Text that is not a well-formed, bounded statement or certificate."""


# -- polynomials ---------------------------------------------------------------------------
def _check(poly: Poly) -> Poly:
    if len(poly) > MAX_TERMS:
        raise FormalError(f"the expression expands to more than {MAX_TERMS} terms")
    for exponents, coefficient in poly.items():
        if sum(exponents) > MAX_DEGREE:
            raise FormalError(f"the expression has degree above {MAX_DEGREE}")
        if len(str(abs(coefficient))) > MAX_DIGITS:
            raise FormalError(f"a coefficient has more than {MAX_DIGITS} digits")
    return {e: c for e, c in poly.items() if c}


def p_const(value: int, n: int) -> Poly:
    return _check({(0,) * n: value})


def p_var(index: int, n: int) -> Poly:
    return {tuple(1 if i == index else 0 for i in range(n)): 1}


def p_add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for e, c in b.items():
        out[e] = out.get(e, 0) + sign * c
    return _check(out)


def p_mul(a: Poly, b: Poly) -> Poly:
    if len(a) * len(b) > MAX_TERMS * 8:
        raise FormalError(f"the expression expands to more than {MAX_TERMS} terms")
    out: Poly = {}
    for ea, ca in a.items():
        for eb, cb in b.items():
            e = tuple(x + y for x, y in zip(ea, eb, strict=True))
            if sum(e) > MAX_DEGREE:
                raise FormalError(f"the expression has degree above {MAX_DEGREE}")
            out[e] = out.get(e, 0) + ca * cb
    return _check(out)


def p_pow(a: Poly, k: int, n: int) -> Poly:
    out = p_const(1, n)
    for _ in range(k):
        out = p_mul(out, a)
    return out


def degree(poly: Poly) -> int:
    return max((sum(e) for e in poly), default=0)


def evaluate(poly: Poly, values: tuple[int, ...]) -> int:
    total = 0
    for exponents, coefficient in poly.items():
        term = coefficient
        for value, exponent in zip(values, exponents, strict=True):
            term *= value**exponent
        total += term
    return total


def render(poly: Poly, names: tuple[str, ...]) -> str:
    """Human-readable polynomial, highest degree first: ``x^2 - 5*x + 6``."""
    if not poly:
        return "0"
    parts = []
    for exponents in sorted(poly, key=lambda e: (-sum(e), [-x for x in e])):
        c = poly[exponents]
        monomial = "*".join(f"{v}^{k}" if k > 1 else v for v, k in zip(names, exponents, strict=True) if k)
        magnitude = abs(c)
        body = monomial if magnitude == 1 and monomial else (f"{magnitude}*{monomial}" if monomial else str(magnitude))
        parts.append(("- " if c < 0 else "+ ") + body)
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


# -- parsing -------------------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    if len(text) > MAX_CHARS:
        raise FormalError(f"the text has {len(text)} characters; the limit is {MAX_CHARS}")
    for ch in text:
        if not (ch.isascii() and (ch.isprintable() or ch in " \t")):
            raise FormalError(f"character {ch!r} (U+{ord(ch):04X}) is not allowed; use plain ASCII digits, letters and + - * ^ ( )")
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            raise FormalError(f"unexpected {text[pos:pos + 10]!r} at position {pos}")
        tokens.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if len(tokens) > MAX_TOKENS:
            raise FormalError(f"the text has more than {MAX_TOKENS} tokens")
    return tokens


class _Parser:
    """Precedence climbing over the token list; results are polynomials over ``names``."""

    def __init__(self, tokens: list[str], names: tuple[str, ...]) -> None:
        self.tokens, self.pos, self.names, self.depth = tokens, 0, names, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise FormalError(f"expected {expected or 'more input'!r}, found {token or 'the end'!r}")
        self.pos += 1
        return token

    def expression(self) -> Poly:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormalError(f"the expression is nested deeper than {MAX_DEPTH} levels")
        result = self.term()
        while self.peek() in ("+", "-"):
            sign = 1 if self.take() == "+" else -1
            result = p_add(result, self.term(), sign)
        self.depth -= 1
        return result

    def term(self) -> Poly:
        result = self.unary()
        while self.peek() == "*":
            self.take()
            result = p_mul(result, self.unary())
        return result

    def power(self) -> Poly:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            token = self.take()
            if not token.isdigit():
                raise FormalError("an exponent must be a plain non-negative integer, e.g. x^2")
            if len(token) > 3 or int(token) > MAX_EXPONENT:
                raise FormalError(f"exponent {token[:8]} is too large; the limit is {MAX_EXPONENT}")
            if self.peek() == "^":
                raise FormalError("chained exponents like 2^3^4 are not allowed; use parentheses")
            return p_pow(base, int(token), len(self.names))
        return base

    def unary(self) -> Poly:
        # "-" binds looser than "^": -x^2 is -(x^2)
        if self.peek() == "-":
            self.take()
            return p_mul(p_const(-1, len(self.names)), self.unary())
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def atom(self) -> Poly:
        token = self.take()
        if token.isdigit():
            if len(token) > MAX_DIGITS:
                raise FormalError(f"a number has more than {MAX_DIGITS} digits")
            return p_const(int(token), len(self.names))
        if token == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if token in self.names:
            return p_var(self.names.index(token), len(self.names))
        if token.isalpha():
            allowed = ", ".join(self.names) or "none"
            raise FormalError(f"unknown name {token!r}; the variables here are: {allowed}")
        raise FormalError(f"unexpected {token!r}")


def parse_polynomial(text: str, names: tuple[str, ...]) -> Poly:
    parser = _Parser(tokenize(text), names)
    poly = parser.expression()
    if parser.peek() is not None:
        raise FormalError(f"unexpected {parser.peek()!r} after the expression")
    return poly


# -- statements ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Constraint:
    lhs: tuple[tuple[tuple[int, ...], int], ...]  # lhs - rhs as a frozen polynomial
    op: str

    def holds(self, values: tuple[int, ...]) -> bool:
        v = evaluate(dict(self.lhs), values)
        return {"=": v == 0, "!=": v != 0, "<": v < 0, ">": v > 0, "<=": v <= 0, ">=": v >= 0}[self.op]


@dataclass(frozen=True)
class Statement:
    kind: str  # "exists" or "factor"
    variables: tuple[str, ...]
    constraints: tuple[Constraint, ...] = ()
    polynomial: tuple[tuple[tuple[int, ...], int], ...] = ()
    text: str = ""

    @property
    def difficulty(self) -> float:
        """A rough size measure: variables + degree + log10 of the largest coefficient."""
        polys = [dict(c.lhs) for c in self.constraints] or [dict(self.polynomial)]
        biggest = max((abs(c) for p in polys for c in p.values()), default=1)
        return len(self.variables) + max(degree(p) for p in polys) + len(str(biggest)) - 1


def parse_statement(text: str, max_variables: int = 3) -> Statement:
    text = " ".join(text.split())
    if text.lower().startswith("factor "):
        poly = parse_polynomial(text[7:], ("x",))
        if degree(poly) < 2:
            raise FormalError("only polynomials of degree 2 or more can be factored")
        return Statement(kind="factor", variables=("x",), polynomial=tuple(sorted(poly.items())), text=text)
    match = re.fullmatch(r"exists\s+([a-z](?:\s*,\s*[a-z])*)\s*:\s*(.+)", text)
    if not match:
        raise FormalError('a statement is "exists x, y: <constraints>" or "factor <polynomial in x>"')
    names = tuple(v.strip() for v in match.group(1).split(","))
    if len(set(names)) != len(names) or not set(names) <= set(VARIABLES):
        raise FormalError(f"variables must be distinct names from {', '.join(VARIABLES)}")
    if len(names) > max_variables:
        raise FormalError(f"use at most {max_variables} variables")
    constraints = []
    for part in re.split(r"\s+and\s+", match.group(2)):
        op = next((o for o in COMPARISONS if o in part), None)
        if op is None or part.count(op) != 1 or any(o in part.replace(op, " ", 1) for o in COMPARISONS):
            raise FormalError(f"each constraint needs exactly one comparison (= != < > <= >=): {part!r}")
        left, right = part.split(op)
        diff = p_add(parse_polynomial(left, names), parse_polynomial(right, names), -1)
        constraints.append(Constraint(lhs=tuple(sorted(diff.items())), op=op))
    if not any(c.op == "=" for c in constraints):
        raise FormalError("at least one constraint must be an equation (=)")
    return Statement(kind="exists", variables=names, constraints=tuple(constraints), text=text)


# -- certificates ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    ok: bool
    message: str


def parse_assignment(text: str, names: tuple[str, ...]) -> tuple[int, ...]:
    values: dict[str, int] = {}
    for part in text.replace(" ", "").split(","):
        match = re.fullmatch(r"([a-z])=(-?\d{1,13})", part)
        if not match:
            raise FormalError(f"cannot read {part!r}; write the witness as e.g. x=4, y=-3")
        name, value = match.group(1), int(match.group(2))
        if name not in names or name in values:
            raise FormalError(f"{name!r} is not a variable of the statement or is given twice")
        if abs(value) > MAX_WITNESS:
            raise FormalError(f"witness values must be at most {MAX_WITNESS} in size")
        values[name] = value
    missing = [n for n in names if n not in values]
    if missing:
        raise FormalError(f"the witness gives no value for {', '.join(missing)}")
    return tuple(values[n] for n in names)


def count_factors(text: str) -> int:
    """Non-constant top-level factors of a product like ``2*(x-1)^2*(x+3)``; a sum at the
    top level (``x^2 - 5*x + 6``) is a single factor."""
    tokens, depth, factors, current = tokenize(text), 0, [], []
    for token in tokens:
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0 and token in "+-" and current:
            return 1 if "x" in tokens else 0
        if token == "*" and depth == 0:
            factors.append(current)
            current = []
        else:
            current.append(token)
    factors.append(current)
    total = 0
    for factor in factors:
        if "x" not in factor:
            continue
        multiplicity = int(factor[-1]) if len(factor) >= 3 and factor[-2] == "^" and factor[-3] == ")" else 1
        total += multiplicity
    return total


class Verifier(Protocol):
    name: str

    def check(self, statement: Statement, certificate: str) -> Check: ...


class CertificateVerifier:
    """The built-in verifier: exact integer arithmetic, bounded by the parser's limits."""

    name = "certificate"

    def check(self, statement: Statement, certificate: str) -> Check:
        try:
            if statement.kind == "factor":
                product = parse_polynomial(certificate, ("x",))
                if product != dict(statement.polynomial):
                    return Check(False, f"the product expands to {render(product, ('x',))}, not the polynomial")
                if count_factors(certificate) < 2:
                    return Check(False, "a factorisation needs at least two non-constant factors")
                return Check(True, "verified: the factors multiply out to the polynomial")
            values = parse_assignment(certificate, statement.variables)
        except FormalError as err:
            return Check(False, str(err))
        for constraint in statement.constraints:
            if not constraint.holds(values):
                return Check(False, "the witness does not satisfy every constraint")
        return Check(True, "verified: the witness satisfies every constraint")


class LeanVerifier:
    """Checks existence certificates with a Lean 4 executable (``lean`` on the PATH).

    The statement and witness become ``example : ∃ x : Int, ... := ⟨4, by decide⟩``; Lean's
    kernel then decides the arithmetic. Factorisations go to the built-in verifier.
    """

    name = "lean"

    def __init__(self, executable: str | None = None, timeout_s: float = 60.0) -> None:
        self.executable = executable or shutil.which("lean")
        if self.executable is None:
            raise FileNotFoundError("no `lean` executable on the PATH; install Lean 4 (elan) or use the certificate verifier")
        self.timeout_s = timeout_s
        self.fallback = CertificateVerifier()

    def lean_source(self, statement: Statement, values: tuple[int, ...]) -> str:
        names = statement.variables
        body = " ∧ ".join(
            f"{_lean_poly(dict(c.lhs), names)} {'≠' if c.op == '!=' else {'<=': '≤', '>=': '≥'}.get(c.op, c.op)} 0"
            for c in statement.constraints
        )
        binders = " ".join(f"∃ {n} : Int," for n in names)
        witness = ", ".join(f"({v} : Int)" for v in values)
        return f"example : {binders} {body} := ⟨{witness}, by decide⟩\n"

    def check(self, statement: Statement, certificate: str) -> Check:
        if statement.kind != "exists":
            return self.fallback.check(statement, certificate)
        try:
            values = parse_assignment(certificate, statement.variables)
        except FormalError as err:
            return Check(False, str(err))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "Check.lean"
            path.write_text(self.lean_source(statement, values))
            try:
                done = subprocess.run([self.executable, str(path)], capture_output=True, text=True, timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                return Check(False, f"lean did not finish within {self.timeout_s:.0f}s")
        if done.returncode == 0:
            return Check(True, "verified by Lean")
        return Check(False, "Lean rejected the certificate: " + (done.stdout + done.stderr).strip()[:300])


def _lean_poly(poly: Mapping[tuple[int, ...], int], names: tuple[str, ...]) -> str:
    terms = []
    for exponents, c in sorted(poly.items()):
        factors = [f"({c} : Int)"] + [f"{n}^{k}" for n, k in zip(names, exponents, strict=True) if k]
        terms.append("*".join(factors))
    return "(" + " + ".join(terms or ["(0 : Int)"]) + ")"


def make_verifier(name: str) -> Verifier:
    if name == "certificate":
        return CertificateVerifier()
    if name == "lean":
        return LeanVerifier()
    raise ValueError(f"unknown verifier {name!r}; choose 'certificate' or 'lean'")
