"""Scripted players of the reference game (:mod:`dialogym.envs.games.reference`).

``scripted_speaker`` names the fewest attributes that single out the target (always the
shape); ``scripted_listener`` picks the candidate that matches the most clue words. They
are the ``default`` pair the game registers: a baseline a pair of models should reach.

Each policy is ``(view, rng) -> reply``: it reads only the seat's ``view()`` dict and
draws any randomness from ``rng`` (see :mod:`dialogym.envs.games`).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .rules import ATTRIBUTE_ORDER


def scripted_speaker(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Names the fewest attributes that tell the target apart (always including the shape)."""
    target, distractors = view["target"], view["distractors"]
    from itertools import combinations

    for size in range(1, len(ATTRIBUTE_ORDER) + 1):
        for attrs in combinations(ATTRIBUTE_ORDER, size):
            if all(any(d[a] != target[a] for a in attrs) for d in distractors):
                chosen = set(attrs) | {"shape"}
                words = [target[a] for a in ATTRIBUTE_ORDER if a in chosen]
                return "CLUE: the " + " ".join(words)
    return "CLUE: the " + " ".join(target[a] for a in ATTRIBUTE_ORDER)


def scripted_listener(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Picks the candidate that matches the most clue words (ties: a seeded random pick)."""
    words = set(re.findall(r"[a-z]+", (view.get("clue") or "").lower()))
    scores = [sum(value in words for value in c.values()) for c in view["candidates"]]
    best = [i for i, s in enumerate(scores) if s == max(scores)]
    return f"ANSWER: {int(rng.choice(best)) + 1}"


PLAYERS = {"default": {"speaker": scripted_speaker, "listener": scripted_listener}}
