"""Text spaces, and the episode factory the adapters share."""

from __future__ import annotations

import copy
import re
from functools import cache, lru_cache
from typing import Any

from gymnasium import spaces

from .core import MAX_ACTION_CHARS  # the Match enforces it (core, so match.py can import it)
from .factory import load_instances, match_of
from .match import Match
from .registry import spec

#: Longest observation text; older text is cut from the front (the newest matters most).
MAX_OBSERVATION_CHARS = 16_384
_REPLACEMENT = "\ufffd"
#: what :func:`charset` leaves out: other control characters, surrogates, and the planes above the BMP
_OUTSIDE_CHARSET = re.compile("[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\uffff]")


@lru_cache(maxsize=1)
def charset() -> str:
    """Tab, newline and every printable character of the Basic Multilingual Plane.

    (Gymnasium's default ``Text`` charset is alphanumeric only: no spaces.)
    """
    chars = ["\t", "\n"]
    for code in range(0x20, 0x10000):
        if 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF:
            continue
        chars.append(chr(code))
    return "".join(chars)


@cache
def _text_template(max_length: int) -> spaces.Text:
    return spaces.Text(max_length=max_length, min_length=0, charset=charset())


def text_space(max_length: int) -> spaces.Text:
    """A ``Text`` space over :func:`charset` with its own random generator.

    Building one indexes the ~63,000 characters (a quarter of a second), so one space per
    length is built once per process and each call returns a shallow copy: the character
    tables are shared (they are never written), the generator is not, so seeding one
    seat's space leaves every other seat's and env's alone.
    """
    space = copy.copy(_text_template(max_length))
    space._np_random = None  # seeded on first use, like a new space (Space.np_random)
    return space


def observation_space() -> spaces.Dict:
    # A Dict with a "text" field: a bare Text observation fails PettingZoo's dtype checks.
    return spaces.Dict({"text": text_space(MAX_OBSERVATION_CHARS)})


def action_space() -> spaces.Text:
    return text_space(MAX_ACTION_CHARS)


def to_observation(text: str) -> dict[str, str]:
    """Fit ``text`` into the observation space: unknown characters become U+FFFD."""
    if len(text) > MAX_OBSERVATION_CHARS:
        text = text[-MAX_OBSERVATION_CHARS:]
    if text.isascii() and text.replace("\n", " ").replace("\t", " ").isprintable():
        return {"text": text}  # all in the charset: the common case, found ten times faster than by the regex
    return {"text": _OUTSIDE_CHARSET.sub(_REPLACEMENT, text)}


class MatchFactory:
    """Builds the :class:`Match` for each ``reset`` of an adapter, as :func:`new_match` does.

    Options: ``level`` and ``split`` of generated instances (default: the game's first
    level, any split), ``instances`` (an :class:`InstanceSet` or a list of instances to
    draw from instead), ``max_retries`` (invalid-move policy), and the game's own options.
    ``reset`` options may name an ``instance`` to play or a ``level`` to draw from.
    """

    def __init__(self, game_id: str, **kw: Any) -> None:
        self.spec = spec(game_id)
        env_opts, self.game_options = self.spec.split_options(**kw)
        self.game = self.spec.game(**self.game_options)
        self.level: str | None = env_opts.get("level")
        self.split: str = env_opts.get("split", "any")
        self.max_retries: int | None = env_opts.get("max_retries")
        self.render_mode: str | None = env_opts.get("render_mode")
        instances = env_opts.get("instances")
        self.instances = None if instances is None else load_instances(self.id, self.game, instances)
        if self.level is not None and self.level not in self.game.levels:
            raise ValueError(f"{game_id}: unknown level {self.level!r}; choose one of {list(self.game.levels)}")

    @property
    def id(self) -> str:
        return self.spec.id

    def new(self, seed: int, options: dict[str, Any] | None = None) -> Match:
        options = options or {}
        instance = options.get("instance")
        if instance is None and self.instances is not None:
            instance = self.instances[seed % len(self.instances)]
        # the game built once in __init__ serves every episode: a new one per reset cost a
        # registry look-up and the options' merging each time, for the same rules object
        return match_of(
            self.id, self.game, seed, instance=instance, level=options.get("level", self.level), split=self.split,
            max_retries=self.max_retries,
        )


def outcome_info(match: Match, feedback: Any = None) -> dict[str, Any]:
    """The info entries every adapter reports: the last error, and the result once over."""
    info: dict[str, Any] = {}
    if feedback is not None and feedback.error:
        info["error"] = feedback.error
    if match.done:
        info["rewards"] = dict(match.outcome.rewards)
        info["metrics"] = dict(match.outcome.metrics)
        info["aborted"] = match.aborted
        if match.abort_reason:
            info["abort_reason"] = match.abort_reason
    return info


def render(match: Match | None, render_mode: str | None) -> str | None:
    """``render()`` of the adapters: print the transcript (human) or return it (ansi)."""
    if render_mode is None or match is None:
        return None
    text = render_transcript(match)
    if render_mode == "human":
        print(text)
        return None
    return text


def render_transcript(match: Match) -> str:
    """A plain-text transcript of a match so far (for ``render``)."""
    lines = [f"== {match.game_id} (instance {match.instance.id}, seed {match.seed})"]
    for turn in match.turns:
        status = f"  !! {turn.error}" if turn.error else ""
        lines.append(f"[{turn.index}] {turn.seat}: {turn.raw!r}{status}")
    if match.done:
        lines.append(f"== result: rewards {match.outcome.rewards} metrics {match.outcome.metrics}")
        if match.abort_reason:
            lines.append(f"== aborted: {match.abort_reason}")
    return "\n".join(lines)
