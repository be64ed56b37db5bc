"""A TextArena game as a dialogym :class:`~dialogym.envs.Game`: TextArena keeps the rules,
dialogym the match.

TextArena's env holds the board and decides what a move does; dialogym decides what happens to
a move that breaks the rules (its one invalid-move policy, :mod:`dialogym.envs.match`), keeps
the transcript and plays the episodes (engine, bench, trainers, league). Three things make the
two fit:

- **Validity without a side effect.** :meth:`TextArenaGame.parse_move` plays the reply on a
  copy of the env whose ``set_invalid_move`` raises; the reason TextArena gives becomes the
  :class:`~dialogym.envs.InvalidMove` the seat is re-prompted with. The real env only ever
  sees valid moves (so TextArena's own error allowance never fires), and the copy, already
  stepped, becomes the state when :meth:`apply` takes the same move.
- **One random stream per episode.** TextArena draws from Python's global ``random`` (its
  ``State`` seeds it at ``reset``), which many episodes played at once by dialogym's engine
  would share: their deals would depend on the order the engine happened to step them in.
  Every call into TextArena runs with the episode's own saved ``random`` state swapped in (and
  the caller's put back after), under one lock, so an episode replays bit for bit from its
  seed however many others run beside it, and no caller's random state is touched.
- **News, not history.** Each seat's prompt is what TextArena addressed to it since its last
  turn (the rules on its first turn); another seat's words reach it only through
  :func:`~dialogym.envs.quote`.

The instance is the TextArena id and the seed its ``reset`` gets, drawn from dialogym's
instance seed: splits, instance sets and seeds work as for every other game. Games whose rules
do not replay from their seed are marked in :mod:`.catalogue` and warned about at registration.
"""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from dialogym.envs import Game, Instance, InvalidMove, Move, Outcome, quote
from dialogym.envs.core import MEAN_SEAT_QUALITY, excerpt
from dialogym.envs.grammar import alt, grammar

#: TextArena's id of the game master in its messages.
GAME_MASTER = -1
#: One lock around every call into TextArena: the global ``random`` it draws from is swapped
#: per episode, so two threads (the OpenEnv server's sessions) must not step at once.
_TEXTARENA = threading.RLock()
#: Seeds TextArena's ``reset`` is given are drawn below this.
SEED_SPACE = 2**31 - 1


class TextArenaInstance(Instance):
    """A TextArena episode: which game and the seed its ``reset`` gets."""

    env_id: str
    seed: int


class TextMove(Move):
    """A reply TextArena accepted, kept as written (TextArena parses it again when it plays it)."""

    text: str


class Refused(Exception):
    """Raised by the trial env's ``set_invalid_move``: TextArena's reason the move is invalid."""


@dataclass
class TextArenaState:
    env: Any
    #: this episode's own state of Python's ``random`` (swapped in around every TextArena call)
    random_state: Any
    #: per seat index: how many of TextArena's messages to it were already shown to it
    shown: dict[int, int] = field(default_factory=dict)
    #: the last accepted trial: (reply, the stepped env, its random state after the step)
    trial: tuple[str, Any, Any] | None = None


@contextmanager
def own_random(state: TextArenaState, *, keep: bool = True):
    """Run TextArena with the episode's random state; keep what it drew unless ``keep=False``."""
    with _TEXTARENA:
        outer = random.getstate()
        random.setstate(state.random_state)
        try:
            yield
        finally:
            if keep:
                state.random_state = random.getstate()
            random.setstate(outer)


def seat_name(index: int) -> str:
    return f"player_{index}"


class TextArenaGame(Game):
    """Base of every adapted TextArena game; :func:`game_class` makes one subclass per game."""

    #: TextArena's id of the game (e.g. ``"TicTacToe-v0"``)
    env_id: ClassVar[str]
    instance_cls = TextArenaInstance
    reward_range = (-1.0, 1.0)
    zero_sum = True
    selfplay_description = "100 × the share of replies that were valid moves (one model in every seat)"
    #: what a seat may know, read from TextArena's state (``legal_moves`` among it) where the
    #: adapter knows the game well enough: ``(env, seat index) -> dict``
    facts: ClassVar[Callable[[Any, int], dict[str, Any]] | None] = None

    # -- instances -----------------------------------------------------------------
    def generate_instance(self, rng: np.random.Generator, level: str) -> TextArenaInstance:
        return TextArenaInstance(level=level, env_id=self.env_id, seed=int(rng.integers(SEED_SPACE)))

    def initial_state(self, instance: TextArenaInstance) -> TextArenaState:
        import textarena

        if instance.env_id != self.env_id:
            raise ValueError(f"{type(self).__name__}: an instance of {instance.env_id!r}, not {self.env_id!r}")
        state = TextArenaState(env=None, random_state=random.Random(instance.seed).getstate())
        with own_random(state):
            state.env = textarena.make(f"{self.env_id}-raw")
            state.env.reset(num_players=len(self.roles), seed=instance.seed)
        state.shown = {index: 0 for index in range(len(self.roles))}
        return state

    # -- rules ---------------------------------------------------------------------
    def to_move(self, state: TextArenaState) -> Sequence[str]:
        if self.is_terminal(state):
            return []
        return [seat_name(state.env.state.current_player_id)]

    def prompt(self, state: TextArenaState, seat: str) -> str:
        return news(state, self.roles.index(seat))

    def parse_move(self, state: TextArenaState, seat: str, text: str) -> TextMove:
        trial = detached_copy(state.env)
        trial.state.set_invalid_move = _refuse
        try:
            with own_random(state, keep=False):
                trial.step(action=text)
                drawn = random.getstate()
        except Refused as err:
            raise InvalidMove(f"{self.env_id}: {err}; {self.hint(state, seat)}") from None
        except Exception as err:  # TextArena's own bug on odd text: the reply set it off, so it is invalid
            raise InvalidMove(f"{self.env_id} could not play {excerpt(text)} ({type(err).__name__}: {err}); "
                              f"{self.hint(state, seat)}") from None
        state.trial = (text, trial, drawn)
        return TextMove(text=text)

    def hint(self, state: TextArenaState, seat: str) -> str:
        moves = self.moves_now(state, seat)
        if moves:
            shown = ", ".join(moves[:12]) + (", ..." if len(moves) > 12 else "")
            return f"reply with one of: {shown}"
        return "reply with a move in the format the rules give"

    def apply(self, state: TextArenaState, moves: Mapping[str, Move]) -> None:
        for seat, move in moves.items():
            index = self.roles.index(seat)
            before = state.env.state.observations
            state.shown[index] = len(before[index])
            text = move.text  # type: ignore[attr-defined]
            if state.trial is not None and state.trial[0] == text:
                _, stepped, state.random_state = state.trial
                del stepped.state.set_invalid_move  # the class's own again
                for pid, messages in stepped.state.observations.items():
                    before[pid].extend(messages)
                stepped.state.observations = before
                stepped.state.logs = state.env.state.logs + stepped.state.logs
                state.env = stepped
            else:
                with own_random(state):
                    state.env.step(action=text)
            state.trial = None

    def is_terminal(self, state: TextArenaState) -> bool:
        return bool(state.env.state.done)

    def score(self, state: TextArenaState) -> Outcome:
        given = state.env.state.rewards or {}
        rewards = {seat_name(index): float(given.get(index, 0.0)) for index in range(len(self.roles))}
        values = list(rewards.values())
        metrics = {"turns": float(state.env.state.turn), "draw": float(max(values) == min(values))}
        for seat, reward in rewards.items():
            metrics[f"win_{seat}"] = float(reward == max(values) and max(values) > min(values))
        return Outcome(rewards, metrics)

    def abort_outcome(self, state: TextArenaState, offender: str, reason: str) -> Outcome:
        """TextArena's own rule for a player out of retries: it loses, every other seat wins."""
        rewards = {seat: (float(self.abort_penalty) if seat == offender else 1.0) for seat in self.roles}
        return Outcome(rewards, {"forfeit": 1.0})

    def selfplay_score(self, outcome: Outcome) -> float:
        replies = outcome.metrics.get("replies", 0.0)
        if not replies:
            return 0.0
        return 100.0 * (1.0 - outcome.metrics.get("invalid_replies", 0.0) / replies)

    # -- what a seat may know --------------------------------------------------------
    def seat_facts(self, state: TextArenaState, seat: str) -> dict[str, Any]:
        if self.facts is None or self.is_terminal(state):
            return {}
        return self.facts(state.env, self.roles.index(seat))

    def moves_now(self, state: TextArenaState, seat: str) -> list[str] | None:
        """The seat's legal moves now, where the adapter reads them off TextArena's state."""
        if self.is_terminal(state) or state.env.state.current_player_id != self.roles.index(seat):
            return None
        return self.seat_facts(state, seat).get("legal_moves")

    def view(self, state: TextArenaState, seat: str) -> dict[str, Any]:
        """The seat's news (what its prompt says) and, where the adapter reads them, its facts
        (``legal_moves`` only at its turn)."""
        facts = self.seat_facts(state, seat)
        facts["legal_moves"] = self.moves_now(state, seat)
        return {"player": self.roles.index(seat), "news": news(state, self.roles.index(seat)), **facts}

    def move_grammar(self, state: TextArenaState, seat: str) -> str | None:
        moves = self.moves_now(state, seat)
        return grammar(alt(moves)) if moves else None


def _refuse(*args: Any, reason: str | None = None, **_: Any) -> None:
    raise Refused(reason if reason is not None else (args[0] if args else "invalid move"))


def detached_copy(env: Any) -> Any:
    """A deep copy of ``env`` without its message history (the copy starts with empty message
    lists; :meth:`TextArenaGame.apply` joins the copy's new messages onto the old ones), so a
    trial move costs the same on the last turn as on the first."""
    game_state = env.state
    kept = game_state.observations, game_state.logs
    game_state.observations = {pid: [] for pid in kept[0]}
    game_state.logs = []
    try:
        return copy.deepcopy(env)
    finally:
        game_state.observations, game_state.logs = kept


def news(state: TextArenaState, index: int) -> str:
    """What TextArena told seat ``index`` since its last turn; other players' words quoted."""
    parts = []
    for sender, message, _kind in state.env.state.observations[index][state.shown[index]:]:
        if sender == index:
            continue  # the seat's own reply is already in its chat
        if sender == GAME_MASTER:
            parts.append(str(message).strip())
        else:
            parts.append(f"Player {sender} said:\n{quote(str(message))}")
    return "\n\n".join(part for part in parts if part) or "Your move."


def game_class(
    env_id: str,
    *,
    players: int = 2,
    facts: Callable[[Any, int], dict[str, Any]] | None = None,
    reply_tokens: int = 128,
    zero_sum: bool = True,
) -> type[TextArenaGame]:
    """The dialogym game class of TextArena's ``env_id`` (one subclass per game, named after it).
    A general-sum game (``zero_sum=False``) scores self-play as cooperative games do."""
    name = "TextArena" + "".join(ch for ch in env_id.rsplit("-v", 1)[0] if ch.isalnum())
    attributes: dict[str, Any] = {
        "env_id": env_id,
        "roles": tuple(seat_name(index) for index in range(players)),
        "max_reply_tokens": reply_tokens,
        "__doc__": f"TextArena's {env_id}, played by dialogym's rules of play.",
        "__module__": __name__,
    }
    if facts is not None:
        attributes["facts"] = staticmethod(facts)
    if not zero_sum:
        attributes.update(zero_sum=False, selfplay_score=Game.selfplay_score, selfplay_description=MEAN_SEAT_QUALITY)
    return type(name, (TextArenaGame,), attributes)
