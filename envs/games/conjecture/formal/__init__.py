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

Modules, each importing only those above it:

- :mod:`.syntax`: text bounds, tokens, syntax trees, the parser and printer, tree walks;
- :mod:`.polynomials`: bounded integer polynomial arithmetic, expansion, sympy bridge;
- :mod:`.decide`: truth of formulas, and deciding ``factor``/``identity`` statements;
- :mod:`.statements`: parsing and validating whole statements, their size and canonical key;
- :mod:`.verify`: the :class:`Verifier` protocol, :class:`CertificateVerifier`, :func:`make_verifier`;
- :mod:`.lean`: :class:`LeanVerifier`, the only module that does I/O (a ``lean``
  subprocess). It is imported on first use of one of its names, so importing this package
  (and the game) loads pure rules only.
- :mod:`.grammar`: move grammars of statements and certificates (llguidance terminals) for
  guided decoding; imported as a module (``formal.grammar``), its names not re-exported.

Every public name of the modules is available from this package, as before the split.
"""

from __future__ import annotations

import importlib
from typing import Any

from .decide import decide, explain_false, holds
from .polynomials import (
    MAX_BITS,
    MAX_DEGREE,
    MAX_DIGITS,
    MAX_TERMS,
    MAX_WORK,
    Budget,
    Mono,
    Poly,
    const,
    constant_value,
    degree,
    expand,
    factorization,
    from_sympy,
    is_irreducible,
    mono_degree,
    poly_add,
    poly_mul,
    poly_pow,
    poly_text,
    poly_var,
    to_sympy,
    variables_of,
)
from .statements import (
    FACTOR_MAX_DEGREE,
    FACTOR_MAX_DIGITS,
    FACTOR_MAX_VARS,
    MAX_VARS,
    Measures,
    canonical_key,
    measures,
    parse_statement,
)
from .syntax import (
    KEYWORDS,
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_LITERAL_DIGITS,
    MAX_TEXT_CHARS,
    MAX_TOKENS,
    RELOPS,
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
    Token,
    Var,
    check_text,
    conjuncts,
    free_names,
    negate,
    parse_expr,
    parse_formula,
    statement_text,
    to_text,
    tokenize,
)
from .verify import (
    MAX_CHAIN_STEPS,
    Assignment,
    CertificateVerifier,
    Verdict,
    Verifier,
    make_verifier,
    parse_assignment,
)

#: Names served by :mod:`.lean`, imported only when one of them is first asked for.
_LEAN_NAMES = ("LEAN_FORBIDDEN", "LEAN_MAX_PROOF_CHARS", "LeanVerifier", "lean_proposition")


def __getattr__(name: str) -> Any:
    if name in _LEAN_NAMES:
        return getattr(importlib.import_module(".lean", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FACTOR_MAX_DEGREE", "FACTOR_MAX_DIGITS", "FACTOR_MAX_VARS", "KEYWORDS", "MAX_BITS", "MAX_CHAIN_STEPS",
    "MAX_DEGREE", "MAX_DEPTH", "MAX_DIGITS", "MAX_EXPONENT", "MAX_LITERAL_DIGITS", "MAX_TERMS", "MAX_TEXT_CHARS",
    "MAX_TOKENS", "MAX_VARS", "MAX_WORK", "RELOPS", "STATEMENT_EXAMPLE", "Assignment", "BoolOp", "Budget",
    "CertificateVerifier", "Cmp", "FormalError", "Measures", "Mono", "Neg", "Node", "Not", "Num", "Poly", "Pow",
    "Prod", "Statement", "Sum", "Token", "Var", "Verdict", "Verifier", "canonical_key", "check_text", "conjuncts",
    "const", "constant_value", "decide", "degree", "expand", "explain_false", "factorization", "free_names",
    "from_sympy", "holds", "is_irreducible", "make_verifier", "measures", "mono_degree", "negate", "parse_assignment",
    "parse_expr", "parse_formula", "parse_statement", "poly_add", "poly_mul", "poly_pow", "poly_text", "poly_var",
    "statement_text", "to_sympy", "to_text", "tokenize", "variables_of", *_LEAN_NAMES,
]
