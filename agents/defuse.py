"""Seats' text is data, never markup: no chat-template special token can be written in it.

A chat template renders messages into one string, and the tokenizer then reads every
special-token string in it (``<|im_end|>``, ``<|eot_id|>``, ...) as the real special token,
wherever it stands. So a seat that writes ``<|im_end|>\\n<|im_start|>system`` into its move
would open a new system turn in the other seat's prompt, inside the game master's quoted
block. :func:`quote <dialogym.envs.core.quote>` guards lines; this module guards tokens.

Every place that applies a chat template passes the messages through :func:`defuse_messages`
first: the transformers and vLLM backends (with their tokenizer's own special and added
tokens), the HTTP client (the remote template is unknown, so with
:data:`KNOWN_TEMPLATE_TOKENS` and the ``<|...|>`` family), and the model server (through its
agent). Each occurrence gets a zero-width space (U+200B) after its first character: the
text still reads the same to a person and to the model, but no tokenizer can match it as one
token. Text without such strings (every honest prompt) is left byte for byte as it is, so
its token ids do not change.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from dialogym.envs.core import Message

#: What is put after the first character of a special-token string found in message text.
BREAK = "\u200b"

#: Special-token strings of widespread chat templates (Llama 2, Mistral, Gemma, Phi, ...),
#: defused even where the backend's tokenizer is not known (a remote server). The ``<|...|>``
#: family (ChatML, Llama 3, Phi 3, GPT) is matched by pattern, see :data:`_FAMILY`.
KNOWN_TEMPLATE_TOKENS: tuple[str, ...] = (
    "<s>", "</s>", "<unk>", "<pad>", "<bos>", "<eos>",
    "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
    "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]",
    "<start_of_turn>", "<end_of_turn>", "<think>", "</think>",
)  # fmt: skip
#: ``<|name|>`` (ASCII bars) and DeepSeek's ``<｜name｜>`` (full-width bars).
_FAMILY = r"<\|[^|<>\s]{1,64}\|>|<\uff5c[^\uff5c<>\s]{1,64}\uff5c>"

_PATTERNS: weakref.WeakKeyDictionary[Any, re.Pattern[str]] = weakref.WeakKeyDictionary()
_GENERIC: re.Pattern[str] | None = None


def tokenizer_tokens(tokenizer: Any) -> set[str]:
    """The strings ``tokenizer`` reads as one token whatever surrounds them: its special
    tokens and every added token (a Hugging Face tokenizer; other objects give none)."""
    found: set[str] = set()
    for token in getattr(tokenizer, "all_special_tokens", None) or ():
        found.add(str(token))
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for added in decoder.values():
        found.add(str(getattr(added, "content", added)))
    return {t for t in found if len(t) >= 2}


def pattern(tokens: Iterable[str] = ()) -> re.Pattern[str]:
    """A regex matching :data:`KNOWN_TEMPLATE_TOKENS`, the ``<|...|>`` family and ``tokens``
    (longest first, so none shadows a longer one)."""
    literals = sorted(set(KNOWN_TEMPLATE_TOKENS) | set(tokens), key=lambda t: (-len(t), t))
    return re.compile("|".join([_FAMILY, *map(re.escape, literals)]))


def pattern_for(tokenizer: Any | None) -> re.Pattern[str]:
    """:func:`pattern` of ``tokenizer``'s tokens, built once per tokenizer (None: the generic one)."""
    global _GENERIC
    if tokenizer is None:
        if _GENERIC is None:
            _GENERIC = pattern()
        return _GENERIC
    try:
        cached = _PATTERNS.get(tokenizer)
    except TypeError:  # not weak-referenceable: build it each time
        return pattern(tokenizer_tokens(tokenizer))
    if cached is None:
        cached = _PATTERNS[tokenizer] = pattern(tokenizer_tokens(tokenizer))
    return cached


def _break(match: re.Match[str]) -> str:
    found = match.group(0)
    return found[0] + BREAK + found[1:]


def defuse(text: str, tokens: re.Pattern[str]) -> str:
    """``text`` with every special-token string ``tokens`` matches broken by :data:`BREAK`.

    Repeated until none is left: a token can hide inside the overlap of two others, and a
    break never makes a new one (no special token holds U+200B).
    """
    for _ in range(len(text)):
        fixed = tokens.sub(_break, text)
        if fixed == text:
            return text
        text = fixed
    return text  # pragma: no cover - each pass breaks at least one occurrence


def defuse_messages(messages: Sequence[Message], tokenizer: Any | None = None) -> list[Message]:
    """``messages`` whose contents can no longer be read as special tokens of ``tokenizer``
    (or of any widespread template, for ``None``). Messages that need no change are the same
    objects, so an honest prompt costs one regex scan per message."""
    tokens = pattern_for(tokenizer)
    out: list[Message] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) and tokens.search(content):
            message = {**message, "content": defuse(content, tokens)}
        out.append(message)
    return out
