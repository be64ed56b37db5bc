"""One episode of one game in progress: the only place the invalid-move policy lives.

A :class:`Match` holds a game, an instance and the state, keeps each seat's chat, takes
raw replies and turns them into moves. A reply that fails to parse gets the seat
re-prompted with the error, up to the game's ``max_retries`` times in one turn; one more
failure aborts the episode with the game's abort penalty and a recorded reason. A game's
parser should raise :class:`InvalidMove`; any other ``ValueError`` (or ``OverflowError``,
``RecursionError``) it lets slip is caught here and treated as an invalid move too, so a
hostile reply can never crash a run. A reply longer than :data:`~.core.MAX_ACTION_CHARS`
is an invalid move before any parser sees it, and is recorded cut to that length. A reply
holding unpaired surrogates (not valid Unicode, so not storable) has them replaced before
anything reads it, with a note on its turn (:mod:`.text`).

Every outcome gets two metrics from here, for every game: ``replies`` (all replies of the
episode, re-prompted ones included) and ``invalid_replies`` (those that were rejected).
Every game-master message is cut to :data:`~.core.MAX_PROMPT_CHARS` by dropping its middle.

Adapters (PettingZoo, Gymnasium) and the rollout engine all drive games through this
class, so every front end plays by exactly the same rules.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from .core import (
    MAX_ACTION_CHARS,
    MAX_PROMPT_CHARS,
    Game,
    Instance,
    InvalidMove,
    Message,
    Move,
    Outcome,
    clip_middle,
    unify_line_breaks,
)
from .episode import Episode, Turn
from .text import storable, storable_note

#: Hard cap on replies in one episode, a guard against a game that never ends.
MAX_REPLIES = 2000
#: Longest error shown in a re-prompt (errors may quote the reply).
MAX_ERROR_CHARS = 600
#: Parse failures a game should have turned into InvalidMove, caught as a safety net.
_PARSE_FAILURES = (ValueError, OverflowError, RecursionError)


@dataclass(frozen=True)
class Feedback:
    """What happened to one submitted reply."""

    accepted: bool
    error: str | None = None
    aborted: bool = False


#: The feedback on every accepted reply (frozen, so one object serves them all).
ACCEPTED = Feedback(accepted=True)


def reprompt_text(error: str, attempts_left: int) -> str:
    plural = "attempt" if attempts_left == 1 else "attempts"
    return f"Invalid move: {error}\nReply again in the required format ({attempts_left} {plural} left)."


class Match:
    """Drives one episode. Pure bookkeeping: it never calls a model."""

    def __init__(
        self,
        game: Game,
        instance: Instance,
        *,
        game_id: str = "",
        seed: int = 0,
        play: int = 0,
        max_retries: int | None = None,
    ) -> None:
        self.game = game
        self.game_id = game_id or type(game).__name__
        self.instance = instance
        #: The seed the instance was drawn from; with ``play`` it seeds every reply.
        self.seed = seed
        #: Which play of this instance this is (0, 1, ... for a group of repeated plays).
        self.play = play
        if self.play < 0:
            raise ValueError(f"play must be >= 0, got {self.play}")
        self.max_retries = game.max_retries if max_retries is None else max_retries
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        self.state = game.initial_state(instance)
        self.chats: dict[str, list[Message]] = {seat: [] for seat in game.roles}
        #: every reply so far, as the keyword arguments of its Turn: the record (:attr:`turns`)
        #: is built when it is read, so a step that nobody records costs no model validation
        self._replies: list[dict[str, Any]] = []
        self._turns: list[Turn] = []
        self._invalid_replies = 0
        self._unrecorded: dict[str, list[Message]] = {seat: [] for seat in game.roles}
        self._pending_moves: dict[str, Move] = {}
        self._retries: dict[str, int] = {seat: 0 for seat in game.roles}
        #: the seats to act, kept from one change of the state (a move, the end) to the next
        self._to_act: list[str] | None = None
        self._outcome: Outcome | None = None
        self.abort_reason: str | None = None
        self.aborted_by: str | None = None
        self.started_at = time.time()
        self._ended_at: float | None = None
        self._check_over()

    # -- reading ---------------------------------------------------------------------
    @property
    def roles(self) -> tuple[str, ...]:
        return self.game.roles

    @property
    def done(self) -> bool:
        return self._outcome is not None

    @property
    def aborted(self) -> bool:
        return self.abort_reason is not None

    @property
    def outcome(self) -> Outcome:
        if self._outcome is None:
            raise RuntimeError("the episode is not over yet")
        return self._outcome

    def to_act(self) -> list[str]:
        """Seats whose reply is awaited now (several for a simultaneous turn)."""
        return list(self._awaited())

    def _awaited(self) -> list[str]:
        # Asked several times a step by every front end; the state changes only in submit.
        if self._to_act is None:
            moving = [] if self.done else self.game.to_move(self.state)
            self._to_act = [seat for seat in moving if seat not in self._pending_moves]
        return self._to_act

    def messages(self, seat: str) -> list[Message]:
        """The full chat ``seat`` sees, ending with the message it must answer if it is to act."""
        if seat in self._awaited():
            self._ensure_prompt(seat)
        return list(self.chats[seat])

    def prompt(self, seat: str) -> str:
        """The message ``seat`` must answer now ("" when it is not to act): the last of
        :meth:`messages`, without copying the chat."""
        if seat not in self._awaited():
            return ""
        self._ensure_prompt(seat)
        return self.chats[seat][-1]["content"]

    @property
    def reply_count(self) -> int:
        """How many replies were submitted so far (``len(turns)``, without building the records)."""
        return len(self._replies)

    @property
    def turns(self) -> list[Turn]:
        """Every reply so far, valid or not, as the episode records it."""
        for reply in self._replies[len(self._turns):]:
            move = reply["move"]
            self._turns.append(Turn(**{**reply, "move": None if move is None else move.model_dump(mode="json")}))
        return self._turns

    def view(self, seat: str) -> dict[str, Any]:
        return self.game.view(self.state, seat)

    def move_grammar(self, seat: str) -> str | None:
        """The grammar of ``seat``'s legal moves now (None: the game leaves replies free)."""
        return self.game.move_grammar(self.state, seat)

    def retries_left(self, seat: str) -> int:
        return self.max_retries - self._retries[seat]

    # -- acting ----------------------------------------------------------------------
    def submit(
        self,
        seat: str,
        text: str,
        *,
        token_ids: list[int] | None = None,
        logprobs: list[float] | None = None,
        prompt_token_ids: list[int] | None = None,
        latency_s: float | None = None,
        grammar: str | None = None,
    ) -> Feedback:
        """Take ``seat``'s raw reply. Invalid replies re-prompt or, past the limit, abort.

        ``grammar`` is the move grammar a guided reply was decoded under (recorded on the turn).
        """
        if self.done:
            raise RuntimeError(f"{self.game_id}: the episode is over; {seat!r} cannot move")
        if seat not in self._awaited():
            raise RuntimeError(f"{self.game_id}: it is not {seat!r}'s turn (waiting for {self.to_act()})")
        self._ensure_prompt(seat)
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        text, replaced = storable(text)  # before anything reads or records it
        note = storable_note(replaced) if replaced else None
        if len(text) > MAX_ACTION_CHARS:
            # One place for every game and front end: no parser sees it, no record keeps it whole.
            move, error = None, (
                f"{self.game_id}: the reply has {len(text)} characters, over the {MAX_ACTION_CHARS} a move may have; "
                "reply with the move alone, in the format the rules give"
            )
            text = clip_middle(text, MAX_ACTION_CHARS)
        else:
            move, error = self._parse(seat, text)
        self._replies.append(
            dict(
                index=len(self._replies),
                seat=seat,
                messages=self._unrecorded[seat],
                raw=text,
                move=move,  # dumped to JSON when the record is built
                error=error,
                # copies, as the Turn's validation would make them: the caller may reuse its lists
                token_ids=None if token_ids is None else list(token_ids),
                logprobs=None if logprobs is None else list(logprobs),
                prompt_token_ids=None if prompt_token_ids is None else list(prompt_token_ids),
                latency_s=latency_s,
                grammar=grammar,
                note=note,
                round=self.game.round_of(self.state),
            )
        )
        if error is not None:
            self._invalid_replies += 1
        self._unrecorded[seat] = []
        self.chats[seat].append({"role": "assistant", "content": text})

        if move is None:
            return self._reject(seat, error or "")
        self._retries[seat] = 0
        self._pending_moves[seat] = move
        self._to_act = None
        if not self._awaited():
            moves, self._pending_moves = self._pending_moves, {}
            self.game.apply(self.state, moves)
            self._to_act = None
            self._check_over()
        if len(self._replies) >= MAX_REPLIES and not self.done:
            self._abort(seat, f"the episode exceeded {MAX_REPLIES} replies")
        return ACCEPTED

    def _parse(self, seat: str, text: str) -> tuple[Move | None, str | None]:
        try:
            # every game's parser reads lines as quote() shows them; a plugin game's too
            return self.game.parse_move(self.state, seat, unify_line_breaks(text)), None
        except InvalidMove as err:
            error = str(err) or "the reply is not a valid move"
        except _PARSE_FAILURES as err:  # a game bug, but the reply is what set it off
            error = (
                f"{self.game_id}: the reply could not be read ({type(err).__name__}: {err}); "
                "write the move exactly in the format the rules give"
            )
        return None, clip_middle(error, MAX_ERROR_CHARS)

    def _reject(self, seat: str, error: str) -> Feedback:
        if self._retries[seat] >= self.max_retries:
            self._abort(seat, f"{seat}: invalid move after {self.max_retries} re-prompts: {error}")
            return Feedback(accepted=False, error=error, aborted=True)
        self._retries[seat] += 1
        self._add_message(seat, reprompt_text(error, self.retries_left(seat) + 1))
        return Feedback(accepted=False, error=error)

    def _abort(self, seat: str, reason: str) -> None:
        self.abort_reason = reason
        self.aborted_by = seat
        outcome = self.game.abort_outcome(self.state, seat, reason)
        finished = self.game.round_of(self.state)
        if finished is not None and not outcome.round_rewards:
            # the abort's outcome replaces what the finished rounds won: they count 0, and the
            # round cut short carries the whole penalty (the rounds still sum to the rewards)
            outcome.round_rewards = [dict.fromkeys(self.roles, 0.0) for _ in range(finished)]
        self._finish(outcome)

    def _check_over(self) -> None:
        if self.game.is_terminal(self.state):
            self._finish(self.game.score(self.state))

    def _finish(self, outcome: Outcome) -> None:
        outcome.metrics["replies"] = float(len(self._replies))
        outcome.metrics["invalid_replies"] = float(self._invalid_replies)
        self._outcome = outcome
        self._to_act = None
        self._ended_at = time.time()

    def _ensure_prompt(self, seat: str) -> None:
        chat = self.chats[seat]
        # A re-prompt already ends the chat with a user message; otherwise ask the game.
        if not chat or chat[-1]["role"] == "assistant":
            self._add_message(seat, self.game.prompt(self.state, seat))

    def _add_message(self, seat: str, content: str) -> None:
        message = {"role": "user", "content": clip_middle(content, MAX_PROMPT_CHARS)}
        self.chats[seat].append(message)
        self._unrecorded[seat].append(message)

    # -- the record --------------------------------------------------------------------
    def episode(self, seats: dict[str, str] | None = None, *, tags: dict[str, str] | None = None) -> Episode:
        """The finished episode as a record; ``seats`` names the agent in each seat."""
        outcome = self.outcome
        seats = seats or {seat: "unknown" for seat in self.roles}
        key = f"{self.game_id}|{self.instance.id}|{self.seed}|{sorted(seats.items())}|{sorted((tags or {}).items())}"
        if self.play:  # play 0 keeps the ids episodes had before plays existed
            key += f"|play={self.play}"
        return Episode(
            id=hashlib.sha256(key.encode()).hexdigest()[:16],
            game=self.game_id,
            instance_id=self.instance.id,
            instance_version=self.game.instance_version,
            instance=self.instance.model_dump(mode="json"),
            level=self.instance.level,
            seed=self.seed,
            play=self.play,
            seats=dict(seats),
            turns=list(self.turns),
            rewards={seat: float(outcome.rewards.get(seat, 0.0)) for seat in self.roles},
            metrics={name: float(value) for name, value in outcome.metrics.items()},
            round_rewards=[{seat: float(r.get(seat, 0.0)) for seat in self.roles} for r in outcome.round_rewards],
            status="aborted" if self.aborted else "completed",
            abort_reason=self.abort_reason,
            aborted_by=self.aborted_by,
            started_at=self.started_at,
            duration_s=(self._ended_at or time.time()) - self.started_at,
            tags=dict(tags or {}),
        )
