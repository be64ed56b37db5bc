"""One-seat toy games for checking that a trainer learns (tests, perf benchmarks).

``dialogym-toy/Letters-v0``: the seat is asked to write lowercase letters; its reward is the
share of lowercase ASCII letters in its reply. Even a random model earns about 0.1, so the
signal is dense from the first step.

``dialogym-toy/Choice-v0``: the seat answers ``CHOICE: <1-4>`` under a move grammar (guided
play) and scores 1 for choice 3, else 0. Under the grammar only the digit is a choice
(the prefix and the end are forced), so a random model earns about 0.25 and what it learns
is the choice alone: the check that guided training is exact and learns.

Importing this module registers both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dialogym.envs import Game, Instance, InvalidMove, Move, Outcome, register, registered
from dialogym.envs.grammar import grammar, int_range, lit

GAME_ID = "dialogym-toy/Letters-v0"
PROMPT = "Write lowercase letters."
CHOICE_ID = "dialogym-toy/Choice-v0"
#: the choice that scores 1
RIGHT_CHOICE = 3


class Blank(Instance):
    #: varies the content, so that both the train and the test split have instances
    nonce: int = 0


class Text(Move):
    text: str


@dataclass
class State:
    text: str | None = None


def letter_share(text: str) -> float:
    return sum(c.islower() and c.isascii() for c in text) / max(1, len(text))


class Letters(Game):
    roles, instance_cls, max_reply_tokens = ("writer",), Blank, 64

    def generate_instance(self, rng, level):
        return Blank(level=level, nonce=int(rng.integers(1_000_000)))

    def initial_state(self, instance):
        return State()

    def to_move(self, s):
        return [] if s.text is not None else ["writer"]

    def prompt(self, s, seat):
        return PROMPT

    def parse_move(self, s, seat, text):
        return Text(text=text)

    def apply(self, s, moves):
        s.text = moves["writer"].text

    def is_terminal(self, s):
        return s.text is not None

    def score(self, s):
        share = letter_share(s.text or "")
        return Outcome({"writer": share}, {"letters": share})


def lowercase_writer(view: dict, rng) -> str:
    """The scripted player: always right (reward 1)."""
    return "letters"


class Pick(Move):
    choice: int


@dataclass
class ChoiceState:
    choice: int | None = None


class Choice(Game):
    roles, instance_cls, max_reply_tokens, max_retries = ("chooser",), Blank, 16, 0

    def generate_instance(self, rng, level):
        return Blank(level=level, nonce=int(rng.integers(1_000_000)))

    def initial_state(self, instance):
        return ChoiceState()

    def to_move(self, s):
        return [] if s.choice is not None else ["chooser"]

    def prompt(self, s, seat):
        return "Choose a number from 1 to 4. Reply CHOICE: <1-4>."

    def parse_move(self, s, seat, text):
        found = re.fullmatch(r"CHOICE: ([1-4])", text.strip())
        if not found:
            raise InvalidMove(f"choice: reply e.g. 'CHOICE: 2' (a number from 1 to 4), not {text[:30]!r}")
        return Pick(choice=int(found.group(1)))

    def move_grammar(self, s, seat):
        return grammar(f"{lit('CHOICE: ')} {int_range(1, 4)}")

    def apply(self, s, moves):
        s.choice = moves["chooser"].choice

    def is_terminal(self, s):
        return s.choice is not None

    def score(self, s):
        right = float(s.choice == RIGHT_CHOICE)
        return Outcome({"chooser": right}, {"right": right})


def right_chooser(view: dict, rng) -> str:
    """The scripted player: always right (reward 1)."""
    return f"CHOICE: {RIGHT_CHOICE}"


if GAME_ID not in registered():
    register(GAME_ID, Letters, players={"default": {"writer": lowercase_writer}})
if CHOICE_ID not in registered():
    register(CHOICE_ID, Choice, players={"default": {"chooser": right_chooser}})
