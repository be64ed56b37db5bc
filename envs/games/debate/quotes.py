"""Quotes in debate arguments: checking that the tags pair up, verifying each quote against
the passage, and showing an argument to the judge with the game's own markings.

A quote is verified when its words, whitespace squashed, appear exactly in the passage; the
judge sees it as ``<v_quote>...</v_quote>``, else as ``<u_quote>...</u_quote>``. Everything a
debater writes is neutralised first (look-alike characters included), so only the game can
produce those tags.
"""

from __future__ import annotations

import re
import unicodedata

from ...core import InvalidMove

_QUOTE_TAG_RE = re.compile(r"<\s*(/?)\s*quote\s*>", re.IGNORECASE)
#: Anything a debater writes that could pass for the game's quote markings.
_JUDGE_TAG_WORD_RE = re.compile(r"(?<![a-z])[uv][\W_]*(?=quote)", re.IGNORECASE)
#: Small capitals have no NFKC decomposition; folded by hand so "<ᴠ_ǫᴜᴏᴛᴇ>" reads "<v_quote>"
#: (q has two look-alikes: ǫ and ꞯ).
_SMALL_CAPITALS = str.maketrans("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫꞯʀꜱᴛᴜᴠᴡʏᴢ", "abcdefghijklmnopqqrstuvwyz")
_SHOWN_QUOTE_RE = {flag: re.compile(rf"<{tag}>(.*?)</{tag}>", re.DOTALL) for flag, tag in ((True, "v_quote"), (False, "u_quote"))}


def _squash(text: str) -> str:
    return " ".join(text.split())


def _neutralise(text: str) -> str:
    """Make debater text unable to contain a quote marking only the game may write, in
    look-alike characters too (fullwidth, small capitals: folded first)."""
    text = unicodedata.normalize("NFKC", text).translate(_SMALL_CAPITALS)
    return _JUDGE_TAG_WORD_RE.sub("", text).replace("<", "\u2039").replace(">", "\u203a")


def check_quote_tags(body: str) -> list[str]:
    """The quoted passages of an argument, or :class:`InvalidMove` if the tags do not pair up."""
    example = 'write each quote as <quote>exact words from the passage</quote>'
    bodies: list[str] = []
    opened_at: int | None = None
    for tag in _QUOTE_TAG_RE.finditer(body):
        closing = bool(tag.group(1))
        if not closing and opened_at is not None:
            raise InvalidMove(f"quote {len(bodies) + 1} is opened again before it is closed (quotes cannot nest); {example}")
        if closing and opened_at is None:
            raise InvalidMove(f"a </quote> closes a quote that was never opened; {example}")
        if closing:
            assert opened_at is not None
            text = body[opened_at:tag.start()]
            if not text.strip():
                raise InvalidMove(f"quote {len(bodies) + 1} is empty; {example}")
            bodies.append(text)
            opened_at = None
        else:
            opened_at = tag.end()
    if opened_at is not None:
        raise InvalidMove(f"quote {len(bodies) + 1} is never closed with </quote>; {example}")
    return bodies


def mark_quotes(text: str, passage: str) -> tuple[str, list[bool]]:
    """The argument as the judge sees it, and one flag per quote (True when verified).

    A quote is verified when its words, whitespace squashed, appear exactly in the passage.
    Everything the debater wrote is neutralised first, so the ``<v_quote>`` and
    ``<u_quote>`` tags in the result are always the game's.
    """
    squashed_passage = _squash(passage)
    flags: list[bool] = []
    pieces: list[str] = []
    position = 0
    opened_at = 0
    for tag in _QUOTE_TAG_RE.finditer(text):
        if not tag.group(1):
            pieces.append(_neutralise(text[position:tag.start()]))
            opened_at = tag.end()
            continue
        words = _squash(text[opened_at:tag.start()])
        verified = bool(words) and words in squashed_passage
        flags.append(verified)
        name = "v_quote" if verified else "u_quote"
        pieces.append(f"<{name}>{_neutralise(words)}</{name}>")
        position = tag.end()
    pieces.append(_neutralise(text[position:]))
    return "".join(pieces), flags


def shown_quotes(text: str, verified: bool) -> list[str]:
    """The verified (or unverified) quotes in an argument as shown to the judge."""
    return _SHOWN_QUOTE_RE[verified].findall(text)
