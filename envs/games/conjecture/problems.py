"""Seed problems of the conjecturer-prover game: levels and the templates that draw a true
statement with its proof (:func:`make_problem`), in the language of :mod:`.formal`.

Every template takes only the generator it is handed, so an instance replays from its seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import formal


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
