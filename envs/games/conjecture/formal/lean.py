"""Lean 4: statements as Lean propositions, and :class:`LeanVerifier`, which runs ``lean``.

This is the one module of the formal language that does I/O: :meth:`LeanVerifier.verify`
writes a temporary file and runs the ``lean`` executable in a subprocess with a timeout.
Everything else in the formal language (:mod:`dialogym.envs.games.conjecture.formal`) is pure
rules, and nothing imports this module until a Lean verifier is asked for
(``make_verifier("lean")`` or ``formal.LeanVerifier``). The translation
(:func:`lean_proposition`) is pure; it lives here because only the Lean verifier needs it. A
prover's proof is screened before Lean sees it: one line, at most
:data:`LEAN_MAX_PROOF_CHARS` characters, none of :data:`LEAN_FORBIDDEN`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import unicodedata
from typing import Any

from .syntax import BoolOp, Cmp, FormalError, Neg, Node, Not, Num, Pow, Prod, Statement, Sum, Var, free_names
from .verify import Verdict

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
