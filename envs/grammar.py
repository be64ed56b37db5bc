"""Building blocks of move grammars (llguidance's Lark dialect), for :meth:`Game.move_grammar`.

A grammar is plain text: ``start`` is the whole reply. These helpers write the pieces games
need again and again (an exact line, one of a few choices, a whole number in a range, free
text bounded the way a parser bounds it) so a game's grammar reads like its move format::

    grammar(f'"ANSWER: " {int_range(1, n)}')
    grammar(f'"CLUE: " {text(200, exclude="0-9")}')

Lark string literals are JSON strings; regexes go between slashes. Every helper returns a
grammar *expression*; :func:`grammar` wraps one into a whole grammar.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from .core import LINE_BREAKS


def grammar(start: str, **rules: str) -> str:
    """A whole grammar: ``start: <start>`` plus one line per extra rule (``name: body``)."""
    lines = [f"start: {start}"]
    lines += [f"{name}: {body}" for name, body in rules.items()]
    return "\n".join(lines)


def lit(text: str) -> str:
    """``text`` exactly, as a Lark string literal."""
    return json.dumps(text, ensure_ascii=False)


def alt(options: Iterable[str]) -> str:
    """One of ``options`` (each an exact string), longest first so none shadows another."""
    unique = sorted(set(options), key=lambda o: (-len(o), o))
    if not unique:
        raise ValueError("alt() needs at least one option")
    return "(" + " | ".join(lit(o) for o in unique) + ")"


def int_range(lo: int, hi: int) -> str:
    """A whole number from ``lo`` to ``hi`` (ASCII digits, no sign, no leading zeros)."""
    if lo < 0 or hi < lo:
        raise ValueError(f"int_range needs 0 <= lo <= hi, got ({lo}, {hi})")
    return "/" + _range_regex(lo, hi) + "/"


def _range_regex(lo: int, hi: int) -> str:
    """A regex (no anchors) for the decimal numbers lo..hi, written without leading zeros."""
    parts: list[str] = []
    for digits in range(len(str(lo)), len(str(hi)) + 1):
        a = max(lo, 10 ** (digits - 1) if digits > 1 else 0)
        b = min(hi, 10**digits - 1)
        if a <= b:
            parts.extend(_same_length(str(a), str(b)))
    return "(" + "|".join(parts) + ")"


def _same_length(a: str, b: str) -> list[str]:
    """Regexes covering the numbers a..b, which have the same number of digits."""
    if a == b:
        return [a]
    if len(a) == 1:
        return [f"[{a}-{b}]"]
    if a[0] == b[0]:
        return [a[0] + tail for tail in _same_length(a[1:], b[1:])]
    out: list[str] = []
    rest = len(a) - 1
    # a .. a[0]99..9
    out += [a[0] + tail for tail in _same_length(a[1:], "9" * rest)]
    if int(a[0]) + 1 <= int(b[0]) - 1:
        out.append(f"[{int(a[0]) + 1}-{int(b[0]) - 1}][0-9]{{{rest}}}")
    # b[0]00..0 .. b
    out += [b[0] + tail for tail in _same_length("0" * rest, b[1:])]
    return out


#: Every character ``str.splitlines`` breaks a line at, as a regex character-class body: the
#: line breaks of :data:`~.core.LINE_BREAKS`, which parsers read as ``"\\n"`` (one notion of a
#: line for parsers, grammars and :func:`~.core.quote`).
_LINE_BREAKS = "".join(f"\\x{{{ord(c):02x}}}" for c in LINE_BREAKS)


def text(max_chars: int, *, min_chars: int = 1, exclude: str = "", newlines: bool = False) -> str:
    """Free text of ``min_chars``..``max_chars`` characters, none of them in ``exclude`` (a
    regex character-class body such as ``"0-9"``), on one line unless ``newlines``.

    The first and last characters are not blank, since parsers strip replies.
    """
    if max_chars < 1 or min_chars < 1 or min_chars > max_chars:
        raise ValueError(f"text needs 1 <= min_chars <= max_chars, got ({min_chars}, {max_chars})")
    banned = exclude + ("" if newlines else _LINE_BREAKS)
    inner = f"[^{banned}]" if banned else r"[\s\S]"
    # not blank, and not the separators str.strip() also removes (\x1c-\x1f are not \s here)
    edge = f"[^\\s\\x{{1c}}-\\x{{1f}}{exclude}]"
    if max_chars == 1:
        return f"/{edge}/"
    return f"/{edge}({inner}{{0,{max_chars - 2}}}{edge})?/" if min_chars == 1 else (
        f"/{edge}{inner}{{{min_chars - 2},{max_chars - 2}}}{edge}/"
    )
