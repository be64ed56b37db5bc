"""Text from a model, made storable where it enters a game.

A Python string may hold an unpaired surrogate (``"\\ud800"``): a server can send one as the
JSON escape ``"\\ud800"``, and ``json.loads`` keeps it. Such a string is not Unicode, so it
cannot be written as UTF-8: the episode record holding it could not be saved, and a run
would lose it (and every rerun, replaying the same reply, would too). :class:`~.match.Match`
passes every reply through :func:`storable` before anything reads it, and notes on the turn
what was replaced; :func:`storable_data` does the same for a whole record, as a last guard
when one is written.
"""

from __future__ import annotations

import re
from typing import Any

#: What an unpaired surrogate becomes (U+FFFD REPLACEMENT CHARACTER, as UTF-8 decoders do).
REPLACEMENT = "\ufffd"
#: The UTF-16 surrogate code points, as a regex character-class range.
SURROGATE_RANGE = "\ud800-\udfff"
#: One surrogate code point (in a decoded JSON string every one left is unpaired).
SURROGATE = re.compile(f"[{SURROGATE_RANGE}]")


def storable(text: str) -> tuple[str, int]:
    """``text`` as valid Unicode, and how many unpaired surrogates were replaced.

    A high surrogate followed by a low one is the character they encode (how UTF-16 writes
    it); every other surrogate becomes :data:`REPLACEMENT`.
    """
    if text.isprintable() or not SURROGATE.search(text):  # a surrogate is never printable
        return text, 0
    fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return fixed, fixed.count(REPLACEMENT) - text.count(REPLACEMENT)


def storable_note(replaced: int) -> str:
    """The note a turn keeps when ``replaced`` surrogates were replaced in its reply."""
    noun = "surrogate" if replaced == 1 else "surrogates"
    return f"the reply held {replaced} unpaired {noun} (not valid Unicode), each replaced by U+FFFD"


def storable_data(value: Any) -> tuple[Any, int]:
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string made
    :func:`storable`, and how many surrogates were replaced in all."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        total, out = 0, {}
        for key, item in value.items():
            key, a = storable_data(key)
            out[key], b = storable_data(item)
            total += a + b
        return out, total
    if isinstance(value, list | tuple):
        total, items = 0, []
        for item in value:
            fixed, count = storable_data(item)
            items.append(fixed)
            total += count
        return items, total
    return value, 0
