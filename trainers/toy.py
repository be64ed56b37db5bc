"""A one-seat toy game for checking that a trainer learns (tests, perf benchmarks).

The seat is asked to write lowercase letters; its reward is the share of lowercase ASCII
letters in its reply. Even a random model earns about 0.1, so the signal is dense from the
first step. Importing this module registers ``dialogym-toy/Letters-v0``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialogym.envs import Game, Instance, Move, Outcome, register, registered

GAME_ID = "dialogym-toy/Letters-v0"
PROMPT = "Write lowercase letters."


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


if GAME_ID not in registered():
    register(GAME_ID, Letters, players={"default": {"writer": lowercase_writer}})
