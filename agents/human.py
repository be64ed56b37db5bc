"""A person at the terminal plays a seat: the new game messages are shown, the reply is typed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from .base import Reply, Request


class HumanAgent:
    name = "human"

    def __init__(self, console: Console | None = None, read: Callable[[str], str] = input) -> None:
        self.console = console or Console()
        self.read = read

    def act(self, requests: Sequence[Request]) -> list[Reply]:
        replies = []
        for request in requests:
            last_reply = max((i for i, m in enumerate(request.messages) if m["role"] == "assistant"), default=-1)
            for message in request.messages[last_reply + 1 :]:
                # Text(...) shows game and model text verbatim, never as rich markup.
                self.console.print(Panel(Text(message["content"]), title=f"{request.game}: to {request.seat}"))
            replies.append(Reply(text=self.read(f"{request.seat}> ")))
        return replies
