"""Scripted players of the adapted TextArena games: ``(view, rng) -> reply``, as every game's.

They read only the seat's ``view`` (:meth:`~.game.TextArenaGame.view`): its news and, where
the game gives them, its legal moves. ``random`` plays a legal move at random where the game
lists them, and otherwise one of the bracketed moves its news offers (TextArena writes most
choices as ``'[4]'`` or ``[check]``). TicTacToe and Kuhn Poker also get a simple sensible
player: win or block at TicTacToe, bet the best card and fold the worst at Kuhn Poker.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

#: A move as TextArena's messages offer it: a bracketed token, often in quotes ('[4]', '[check]').
OFFERED = re.compile(r"'(\[[^\[\]\n']{1,40}\])'")
#: A move given as an example in the rules' text: "e.g. [a2a3]".
EXAMPLE = re.compile(r"e\.g\.,? '?(\[[^\[\]\n']{1,40}\])")
#: A placeholder in an offered move: "[bet X]", "[attack M O]", "[<number>]".
PLACEHOLDER = re.compile(r"<[^<>\s]{1,20}>|\b[XNMOLR]\b")
#: TicTacToe's lines of three, by cell number.
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))


def random_move(view: dict[str, Any], rng: np.random.Generator) -> str:
    """A legal move at random where the game lists them, else one the news offers, its
    placeholders (``[bet X]``, ``[<number>]``) filled with small numbers."""
    moves = view.get("legal_moves") or offered(view.get("news", ""))
    if not moves:
        return "[pass]"
    move = str(moves[int(rng.integers(len(moves)))])
    if any(ch.isdigit() for ch in move):  # a real move ("[X 4]" marks cell 4 with X), not a template
        return move
    return PLACEHOLDER.sub(lambda _: str(int(rng.integers(0, 3))), move)


def offered(news: str) -> list[str]:
    """The moves the last line of ``news`` that offers any offers (older lines may be stale):
    quoted bracketed tokens, else bracketed examples ("e.g. [a2a3]")."""
    lines = news.splitlines()
    for pattern in (OFFERED, EXAMPLE):
        for line in reversed(lines):
            moves = pattern.findall(line)
            if moves:
                return list(dict.fromkeys(moves))
    return []


def tictactoe(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Win if a line is one mark short, else block the opponent's, else the centre, else at random."""
    moves = view.get("legal_moves") or []
    board = view.get("board") or []
    if not moves or len(board) != 9:
        return random_move(view, rng)
    mine, theirs = view["mark"], view["opponent_mark"]
    free = {int(move.strip("[]")) for move in moves}
    for who in (mine, theirs):
        for line in LINES:
            marks = [board[cell] for cell in line]
            if marks.count(who) == 2 and marks.count("") == 1:
                cell = line[marks.index("")]
                if cell in free:
                    return f"[{cell}]"
    if 4 in free:
        return "[4]"
    return random_move(view, rng)


def kuhn_poker(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Bet or call with a King, fold a Jack to a bet, check otherwise (a bluff now and then)."""
    moves = view.get("legal_moves") or []
    card = view.get("card")
    if not moves or card is None:
        return random_move(view, rng)
    if card == "K":
        preferred = ("[bet]", "[call]")
    elif card == "J":
        preferred = ("[bet]", "[check]") if rng.random() < 0.2 else ("[check]", "[fold]")
    else:
        preferred = ("[check]", "[call]")
    return next((move for move in preferred if move in moves), moves[0])


RANDOM = {"random": random_move}
