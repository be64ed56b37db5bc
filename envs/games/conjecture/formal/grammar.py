"""Move grammars of the formal language: statements and certificates as llguidance terminals.

The conjecturer-prover game (:mod:`dialogym.envs.games.conjecture`) guides its seats with
these (see :meth:`dialogym.envs.Game.move_grammar`). Every piece is a *terminal* (a regular
language: nesting is bounded, one level of brackets in statements, two in certificates),
because terminals can be intersected (``&``) and negated (``~``): each statement and
certificate is capped at :data:`TEXT_CHARS` characters exactly, every quantified variable
must occur in the condition, and Lean's forbidden words are excluded.

Shapes (each text at most :data:`TEXT_CHARS` = ``MAX_TOKENS`` characters, so never over the
parser's token or character limit; single spaces around binary ``+ -``, relations and
keywords, none around ``* ^``; numbers without leading zeros):

- ``exists``/``disprove forall`` over ``Z`` or ``N`` with the quantifiers ``x`` / ``x, y`` /
  ``x, y, z``, or ``a`` / ``a, b`` with ``x`` as an indeterminate; ``exists q`` / ``p, q`` in
  ``Z[x]``, ``q`` in ``Z[x, y]``. The condition: comparison chains joined by and/or, each
  optionally negated, one level of brackets; ``<``-style chains between quantified integers
  only (none over ``Z[...]``); every quantified variable occurs;
- ``factor`` an expanded polynomial in ``x, y`` of degree <= ``FACTOR_MAX_DEGREE`` whose
  first monomial has degree >= 2; ``identity`` two expressions in ``x, y, z``;
- expressions in statements: numbers of at most :data:`STATEMENT_DIGITS` digits; a term is a
  coefficient times at most two factors, a factor a product of powers (``x^2*y``), a bracket
  of such products, or a power of a bracketed linear sum (``(x - 3)^4``), each of degree at
  most :data:`FACTOR_DEGREE`: every side has degree <= 10 in <= 3 names, far inside the
  expansion budgets (degree, terms, digits, work);
- certificates (a witness, or the prover's proof): values for exactly the quantified
  variables in order (``x=4, y=-3``, no sign over ``N``; ``q = x^2 + 1`` over ``Z[...]``,
  only in its indeterminates); a factorisation over the statement's names; an equality
  chain of at most ``MAX_CHAIN_STEPS`` steps, the prover's from the statement's left side to
  its right; exponents 2..``MAX_EXPONENT``, literals up to ``MAX_LITERAL_DIGITS`` digits.
  With the Lean verifier: one line of at most :data:`LEAN_PROOF_CHARS` characters.

What no grammar can check, so a guided move may still be refused: that a ``factor``
polynomial is reducible and an ``identity`` true (the game decides both and refuses false
ones), that a witness verifies, that terms do not cancel (``factor x^2 - x^2 + x``). A
guided proof may of course fail to verify; that spends an attempt, it is not refused.
``conjecture_forms(sound=True)`` keeps only ``exists``/``disprove`` without a witness, where
every accepted string is a valid conjecture.

Why the terminals are no richer: llguidance computes each step's mask within a fuel budget
(``step_lexer_fuel``), and intersections of large regexes multiply the lexer's states.
Counting degree exactly (instead of "two factors of degree <= 5"), or a word-boundary test
for "the variable occurs", ran out of fuel with a real tokenizer; these shapes decode at
about 2-7 ms a step with SmolLM2's tokenizer and still work on half the default fuel (not
on a quarter).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ....grammar import alt, int_range, lit
from .statements import FACTOR_MAX_DEGREE
from .syntax import (
    MAX_EXPONENT,
    MAX_LITERAL_DIGITS,
    MAX_TEXT_CHARS,
    MAX_TOKENS,
    Cmp,
    FormalError,
    Statement,
    free_names,
    to_text,
    tokenize,
)
from .verify import MAX_CHAIN_STEPS

#: Longest statement or certificate: a token is at least one character, so this many
#: characters are never more than ``MAX_TOKENS`` tokens.
TEXT_CHARS = MAX_TOKENS
#: Longest number literal in a statement (scripted statements use at most 9 digits).
STATEMENT_DIGITS = 12
#: Highest degree of a factor in a statement; a term has at most two, so each side of a
#: comparison or identity has degree at most 10: with 3 names at most 286 terms, inside
#: the expansion budget (scripted statements reach degree 5).
FACTOR_DEGREE = 5
#: Longest Lean proof a guided prover may write (the verifier allows 2000 characters;
#: a guided reply is cut at 200 tokens).
LEAN_PROOF_CHARS = 500
#: Quantifier lists over Z or N, with the indeterminates their condition may also use in
#: ``=``/``!=`` comparisons.
INTEGER_HEADS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("x",), ()), (("x", "y"), ()), (("x", "y", "z"), ()), (("a",), ("x",)), (("a", "b"), ("x",)),
)
#: Quantifier lists over polynomial rings: (variables, indeterminates).
POLY_HEADS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ((("q",), ("x",)), (("q",), ("x", "y")), (("p", "q"), ("x",)))
FACTOR_NAMES = ("x", "y")
IDENTITY_NAMES = ("x", "y", "z")
#: Characters of a Lean proof line: printable ASCII and the usual Lean symbols.
_LEAN_SYMBOLS = "⟨⟩←→↔∧∨¬≤≥≠·∀∃λℕℤ⁻¹∘"
_ADD = '(" + " | " - ")'


@dataclass(frozen=True)
class Form:
    """One shape of conjecture: the terminal of its statement and of its witness (None: no
    witness line)."""

    statement: str
    witness: str | None


class Terminals:
    """Named terminal definitions, each written once however often it is used."""

    def __init__(self) -> None:
        self.defs: dict[str, str] = {}

    def add(self, name: str, body: str) -> str:
        self.defs.setdefault(name, body)
        return name


def _key(names: tuple[str, ...]) -> str:
    return "_".join(n.upper() for n in names) or "NONE"


def _capped(body: str, chars: int) -> str:
    return f"({body}) & /.{{1,{chars}}}/"


def _number(t: Terminals, digits: int) -> str:
    return t.add(f"NUM{digits}", f"/(0|[1-9][0-9]{{0,{digits - 1}}})/")


# -- statements: expressions of bounded degree ---------------------------------------------
def bounded_expr(t: Terminals, names: tuple[str, ...], digits: int = STATEMENT_DIGITS) -> str:
    """Sums of terms over ``names``, each term of degree at most 2 * FACTOR_DEGREE: an
    optional coefficient times one or two factors, a factor being a product of powers
    (``x^2*y``), a bracketed sum of such products, or a power of a bracketed linear sum
    (``(x - 3)^4``), each of degree at most FACTOR_DEGREE."""
    key = f"{_key(names)}_{digits}"
    num = _number(t, digits)
    if not names:
        return t.add(f"CONST_{key}", f'"-"? {num} ({_ADD} "-"? {num})*')
    small = _monomial(t, names, FACTOR_DEGREE, digits)
    linear = _monomial(t, names, 1, digits)
    vprod = f"VPROD{FACTOR_DEGREE}_{_key(names)}"
    powers = " | ".join(f'"^{e}"' for e in range(2, FACTOR_DEGREE + 1))
    factor = t.add(
        f"FACTOR_{key}",
        f'{vprod} | "(" {small} ({_ADD} {small})* ")" | "(" {linear} ({_ADD} {linear})* ")" ({powers})',
    )
    term = t.add(f"TERM_{key}", f'"-"? ({num} | ({num} "*")? {factor} ("*" {factor})?)')
    return t.add(f"EXPR_{key}", f"{term} ({_ADD} {term})*")


def _monomial(t: Terminals, names: tuple[str, ...], degree: int, digits: int) -> str:
    """``-3*x^2*y``: an optional sign and coefficient, powers of total degree <= ``degree``."""
    var = t.add(f"VAR_{_key(names)}", alt(names))
    power = {1: var, **{e: t.add(f"POW{e}_{_key(names)}", f'{var} "^{e}"') for e in range(2, degree + 1)}}
    vprod: dict[int, str] = {}
    for d in range(1, degree + 1):
        # the first power has degree k <= d, the rest at most d - k
        vprod[d] = t.add(f"VPROD{d}_{_key(names)}", " | ".join(
            power[k] if k == d else f'{power[k]} ("*" {vprod[d - k]})?' for k in range(1, d + 1)
        ))
    num = _number(t, digits)
    return t.add(f"MONO{degree}_{_key(names)}_{digits}", f'"-"? ({num} | ({num} "*")? {vprod[degree]})')


def _polynomial(t: Terminals, names: tuple[str, ...], degree: int) -> str:
    """An expanded polynomial (a sum of monomials) whose first monomial has degree >= 2."""
    mono = _monomial(t, names, degree, STATEMENT_DIGITS)
    lead = t.add(f"LEAD{degree}_{_key(names)}", f"({mono}) & /.*[a-z][*^].*/ & ~/-?0\\*.*/")
    return t.add(f"POLY{degree}_{_key(names)}", f"{lead} ({_ADD} {mono})*")


def _contains(t: Terminals, name: str) -> str:
    """Conditions in which the one-letter variable ``name`` occurs. Of the words a condition
    may hold (and, or, not) only "and" has a quantifiable letter: ``a`` counts unless an
    ``n`` follows. (Simple on purpose: a word-boundary regex here makes llguidance's lexer
    build too many states.)"""
    assert len(name) == 1 and name not in "ndort", name
    return t.add(f"HAS_{name.upper()}", "/.*a([^n].*)?/" if name == "a" else f"/.*{name}.*/")


def _condition(t: Terminals, ordered: tuple[str, ...], names: tuple[str, ...]) -> str:
    """Comparisons joined by and/or/not, one level of parentheses: ``<``-style chains over
    ``ordered`` (the quantified integers) only, ``=``/``!=`` chains over any of ``names``."""
    relop = "(" + " | ".join(lit(f" {op} ") for op in ("=", "!=", "<", "<=", ">", ">=")) + ")"
    chains = []
    if ordered:
        side = bounded_expr(t, ordered)
        chains.append(f"{side} ({relop} {side})+")
    if names != ordered:
        side = bounded_expr(t, names)
        chains.append(f'{side} ((" = " | " != ") {side})+')
    key = f"{_key(ordered)}__{_key(names)}"
    cmp = t.add(f"CMP_{key}", " | ".join(chains))
    inner = t.add(f"INNER_{key}", f'"not "? {cmp} ((" and " | " or ") "not "? {cmp})*')
    prim = t.add(f"PRIM_{key}", f'"not "? ({cmp} | "(" {inner} ")")')
    return t.add(f"COND_{key}", f'{prim} ((" and " | " or ") {prim})*')


# -- certificates --------------------------------------------------------------------------
def free_expr(t: Terminals, names: tuple[str, ...], digits: int = MAX_LITERAL_DIGITS) -> str:
    """Expressions over ``names`` as a certificate may write them: two levels of
    parentheses, exponents 2..MAX_EXPONENT (on numbers too), no degree bound."""
    key = f"{_key(names)}_{digits}"
    exp = t.add("EXP", int_range(2, MAX_EXPONENT))
    num = _number(t, digits)
    atom = f"({num} | {t.add(f'VAR_{_key(names)}', alt(names))})" if names else num
    factor = t.add(f"CF0_{key}", f'{atom} ("^" {exp})?')
    expr = ""
    for level in range(3):
        if level:
            factor = t.add(f"CF{level}_{key}", f'{factor} | "(" {expr} ")" ("^" {exp})?')
        term = t.add(f"CT{level}_{key}", f'"-"? {factor} ("*" {factor})*')
        expr = t.add(f"CE{level}_{key}", f"{term} ({_ADD} {term})*")
    return expr


def _values(t: Terminals, variables: tuple[str, ...], domain: str, indeterminates: tuple[str, ...]) -> str:
    """``x=4, y=-3`` (no sign over N) or, over Z[...], ``q = x^2 + 1``, in quantifier order."""
    if domain == "poly":
        value = free_expr(t, indeterminates)
        parts = [f'"{v} = " {value}' for v in variables]
    else:
        value = _number(t, MAX_LITERAL_DIGITS) if domain == "N" else t.add("INT", f'"-"? {_number(t, MAX_LITERAL_DIGITS)}')
        parts = [f'"{v}=" {value}' for v in variables]
    name = f"VALUES_{domain.upper()}_{_key(variables)}_{_key(indeterminates)}"
    return t.add(name, _capped(' ", " '.join(parts), TEXT_CHARS))


def certificate(t: Terminals, st: Statement) -> str:
    """What the certificate verifier parses as a proof of ``st``, at most TEXT_CHARS long."""
    if st.kind in ("exists", "disprove"):
        return _values(t, st.variables, st.domain, st.indeterminates)
    names = tuple(sorted(free_names(st.body)))
    if st.kind == "factor":
        return t.add(f"PRODUCT_{_key(names)}", _capped(free_expr(t, names), TEXT_CHARS))
    assert isinstance(st.body, Cmp)
    left, right = (to_text(a) for a in st.body.args)
    # the steps between the two sides get what is left of the token and character limits
    room = min(TEXT_CHARS - _tokens(left) - _tokens(right) - 1, MAX_TEXT_CHARS - len(left) - len(right) - 3)
    if room < 4:  # not even " = 0" fits: only "A = B" is left (and only if it fits itself)
        return t.add("CHAIN", f"{lit(left)} {lit(' = ')} {lit(right)}")
    steps = t.add("STEPS", _capped(f'(" = " {free_expr(t, names)}){{1,{MAX_CHAIN_STEPS - 1}}}', room))
    return t.add("CHAIN", f"{lit(left)} {steps}? {lit(' = ')} {lit(right)}")


def _tokens(text: str) -> int:
    try:
        return len(tokenize(text)) - 1
    except FormalError:  # longer than a proof may be: no room at all
        return MAX_TOKENS


def lean_proof(t: Terminals, chars: int = LEAN_PROOF_CHARS) -> str:
    """One line of a Lean tactic proof, none of the words the Lean verifier refuses."""
    from .lean import LEAN_FORBIDDEN

    banned = "|".join("".join(c if c.isalnum() or c == " " else f"\\{c}" for c in w) for w in LEAN_FORBIDDEN)
    edge = f"[\\x21-\\x7e{_LEAN_SYMBOLS}]"
    body = f"/{edge}([\\x20-\\x7e{_LEAN_SYMBOLS}]{{0,{chars - 2}}}{edge})?/"
    return t.add(f"LEAN{chars}", f"({body}) & ~/.*({banned}).*/")


# -- the two seats -------------------------------------------------------------------------
@cache
def conjecture_forms(verifier: str = "certificate", sound: bool = False) -> tuple[tuple[Form, ...], dict[str, str]]:
    """The statement shapes a guided conjecturer may write, each with its witness, for the
    ``"certificate"`` or the ``"lean"`` verifier: (forms, terminal definitions).

    ``sound`` keeps only what no semantic rule can refuse: ``exists``/``disprove``
    statements without a witness (no ``factor``, no ``identity``). Every string that grammar
    accepts is a valid conjecture, but a conjecturer guided by it never writes a witness.
    """
    _check_verifier(verifier)
    t = Terminals()
    lean = verifier == "lean"
    forms: list[Form] = []
    for variables, free in INTEGER_HEADS:
        if lean and free:  # Lean reads != and not over indeterminates differently (lean.py)
            continue
        parts = [_condition(t, variables, (*variables, *free)), *(_contains(t, v) for v in variables)]
        body = t.add(f"BODY_{_key(variables)}", " & ".join(parts))
        for domain in ("Z", "N"):
            head = f'("exists " | "disprove forall ") "{", ".join(variables)} in {domain}: "'
            statement = t.add(f"STATEMENT_{domain}_{_key(variables)}", _capped(f"{head} {body}", TEXT_CHARS))
            witness = lean_proof(t, TEXT_CHARS) if lean else _values(t, variables, domain, ())
            forms.append(Form(statement, None if sound else witness))
    if not lean:  # the Lean verifier states neither Z[...] nor factor statements
        for variables, rings in POLY_HEADS:
            parts = [_condition(t, (), (*variables, *rings)), *(_contains(t, v) for v in variables)]
            body = t.add(f"BODY_{_key(variables)}_IN_{_key(rings)}", " & ".join(parts))
            head = f'"exists {", ".join(variables)} in Z[{", ".join(rings)}]: "'
            statement = t.add(f"STATEMENT_{_key(variables)}_IN_{_key(rings)}", _capped(f"{head} {body}", TEXT_CHARS))
            forms.append(Form(statement, None if sound else _values(t, variables, "poly", rings)))
    if sound:
        return tuple(forms), dict(t.defs)
    if not lean:
        statement = t.add("STATEMENT_FACTOR", _capped(f'"factor " {_polynomial(t, FACTOR_NAMES, FACTOR_MAX_DEGREE)}', TEXT_CHARS))
        product = t.add(f"PRODUCT_{_key(FACTOR_NAMES)}", _capped(free_expr(t, FACTOR_NAMES), TEXT_CHARS))
        forms.append(Form(statement, product))
    side = bounded_expr(t, IDENTITY_NAMES)
    statement = t.add("STATEMENT_IDENTITY", _capped(f'"identity " {side} " = " {side}', TEXT_CHARS))
    step = free_expr(t, IDENTITY_NAMES)
    chain = lean_proof(t, TEXT_CHARS) if lean else t.add(
        "WITNESS_CHAIN", _capped(f'{step} (" = " {step}){{1,{MAX_CHAIN_STEPS}}}', TEXT_CHARS)
    )
    forms.append(Form(statement, chain))
    return tuple(forms), dict(t.defs)


def proof_terminal(st: Statement, verifier: str = "certificate") -> tuple[str, dict[str, str]]:
    """The prover's proof of ``st`` as a terminal: (its name, terminal definitions)."""
    _check_verifier(verifier)
    t = Terminals()
    return (lean_proof(t) if verifier == "lean" else certificate(t, st)), dict(t.defs)


def _check_verifier(verifier: str) -> None:
    if verifier not in ("certificate", "lean"):
        raise ValueError(f"no move grammar for the verifier {verifier!r}; it knows 'certificate' and 'lean'")
