"""TextArena's games as dialogym games (extra ``dialogym[textarena]``): ``textarena/<Name>-vN``.

:func:`register_games` registers every game of :data:`.catalogue.GAMES` under its TextArena id
with the ``textarena/`` namespace, as an ordinary dialogym game: TextArena keeps the rules
(:mod:`.game`), dialogym the match, the invalid-move policy, transcripts, the engine, bench,
trainers and league. It runs through the ``dialogym.games`` entry-point group when dialogym
is imported, and does nothing where textarena is not installed (nor imports it: a game loads
TextArena at its first episode). A game whose episodes do not replay from the seed is still
registered, with a warning saying so (:data:`.catalogue.UNSEEDED`). See docs/reach.md.
"""

from __future__ import annotations

import importlib.util
import warnings

from .catalogue import GAMES, LEFT_OUT, SHARED_RANDOM, UNSEEDED, Entry
from .game import TextArenaGame, TextArenaInstance, game_class
from .players import RANDOM, kuhn_poker, random_move, tictactoe

NAMESPACE = "textarena"
PLAYERS = {"tictactoe": tictactoe, "kuhn_poker": kuhn_poker}


class SeedNotHonoured(UserWarning):
    """A TextArena game registered although its episodes do not replay from their seed."""


def game_id(entry: Entry) -> str:
    return f"{NAMESPACE}/{entry.env_id}"


def installed() -> bool:
    return importlib.util.find_spec("textarena") is not None


def register_games() -> list[str]:
    """Register every adapted TextArena game (idempotent: each keeps its one class); return
    their ids (none where textarena is not installed)."""
    from dialogym.envs import register

    if not installed():
        return []
    for entry in GAMES:
        cls = _CLASSES.get(entry.env_id)
        if cls is None:
            cls = _CLASSES[entry.env_id] = game_class(entry.env_id, players=entry.players, facts=entry.facts,
                                                      reply_tokens=entry.reply_tokens, zero_sum=entry.zero_sum)
        register(game_id(entry), cls, players=_players(entry, cls.roles))
        if entry.env_id in UNSEEDED:
            warnings.warn(f"{game_id(entry)}: TextArena's game does not replay from its seed "
                          f"({UNSEEDED[entry.env_id]}); reset(seed) will not reproduce its episodes",
                          SeedNotHonoured, stacklevel=2)
    return [game_id(entry) for entry in GAMES]


#: TextArena id -> its game class, made once (registering the same class again is a no-op)
_CLASSES: dict[str, type[TextArenaGame]] = {}


def _players(entry: Entry, roles: tuple[str, ...]) -> dict[str, dict]:
    """The game's scripted players: its own sensible one first (the default), then ``random``."""
    players = {}
    if entry.player is not None:
        players[entry.player] = {seat: PLAYERS[entry.player] for seat in roles}
    players.update({name: {seat: policy for seat in roles} for name, policy in RANDOM.items()})
    return players


__all__ = [
    "GAMES", "LEFT_OUT", "NAMESPACE", "PLAYERS", "SHARED_RANDOM", "SeedNotHonoured", "TextArenaGame", "TextArenaInstance", "UNSEEDED",
    "game_class", "game_id", "installed", "random_move", "register_games",
]
