"""A person at the terminal plays a seat: the new game messages are shown, the reply is typed."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from .base import Reply, Request

# Escape sequences a terminal acts on: CSI (cursor moves, clearing, colours), OSC (window
# title, hyperlinks, clipboard), DCS/SOS/PM/APC strings, and two-character escapes.
_ESCAPE_SEQUENCE_RE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|[ -/]*[0-~]?)"
)
# What is left: C0 controls but tab and newline, DEL, C1 controls (0x9b is a one-byte CSI),
# and the bidirectional overrides that make text display in another order than it reads.
CONTROL_CHARS = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_CONTROL_RE = re.compile(f"[{CONTROL_CHARS}]")


def terminal_text(text: str) -> str:
    """``text`` safe to print on a terminal: escape sequences are dropped and every other
    control character (newline and tab excepted) becomes U+FFFD, so a model's or a server's
    text can neither move the cursor, recolour, retitle or clear the screen, nor reorder the
    line it is on."""
    return _CONTROL_RE.sub("\ufffd", _ESCAPE_SEQUENCE_RE.sub("", text))


class HumanAgent:
    name = "human"
    #: A person types the moves: requests never carry a grammar for them.
    guided = False

    def __init__(self, console: Console | None = None, read: Callable[[str], str] = input) -> None:
        self.console = console or Console()
        self.read = read

    def act(self, requests: Sequence[Request]) -> list[Reply]:
        replies = []
        for request in requests:
            last_reply = max((i for i, m in enumerate(request.messages) if m["role"] == "assistant"), default=-1)
            for message in request.messages[last_reply + 1 :]:
                # Text(...) shows game and model text verbatim, never as rich markup; other
                # seats' messages reach the screen only through terminal_text.
                content = terminal_text(message["content"])
                self.console.print(Panel(Text(content), title=f"{request.game}: to {request.seat}"))
            replies.append(Reply(text=self.read(f"{request.seat}> ")))
        return replies
