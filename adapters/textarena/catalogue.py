"""Which TextArena games dialogym adapts, and what the adapter knows of each.

One row per game: TextArena's id (``textarena/<id>`` in dialogym), how many players, and,
where the adapter reads them off TextArena's state, the seat's facts (its legal moves, its
cards): those give the game a move grammar (guided decoding) and a sensible scripted player.

Every game here plays through dialogym's checkers (PettingZoo's ``api_test``,
``parallel_api_test``, ``seed_test``, Gymnasium's ``check_env``) and replays an episode bit for
bit from its seed, in one process and across processes (tests/adapters/test_textarena_games.py).
``UNSEEDED`` names the games left out because their episodes do not replay from the seed,
with why; ``LEFT_OUT`` those left out for other reasons. Both are listed in docs/reach.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Facts = Callable[[Any, int], dict[str, Any]]


def tictactoe_facts(env: Any, index: int) -> dict[str, Any]:
    """The board (cells 0-8: '', 'X' or 'O'), the seat's mark and its free cells as moves."""
    board = [cell for row in env.state.game_state["board"] for cell in row]
    mark = "X" if index == 1 else "O"  # TextArena: player 1 plays X
    return {"board": board, "mark": mark, "opponent_mark": "O" if mark == "X" else "X",
            "legal_moves": [f"[{cell}]" for cell, value in enumerate(board) if value == ""]}


def kuhn_poker_facts(env: Any, index: int) -> dict[str, Any]:
    """The seat's card (J, Q or K), the chips so far and the actions open to it."""
    game_state = env.state.game_state
    tree = game_state.get("current_legal_action_tree")
    card = {0: "J", 1: "Q", 2: "K"}.get(game_state["player_cards"][index])
    chips = {f"player_{pid}": int(value) for pid, value in game_state["player_chips"].items()}
    moves = [f"[{action}]" for action in tree] if isinstance(tree, dict) else []
    return {"card": card, "chips": chips, "round": int(game_state["current_round"]), "legal_moves": moves}


@dataclass(frozen=True)
class Entry:
    """One adapted game."""

    #: TextArena's id; the dialogym id is ``textarena/<env_id>``
    env_id: str
    players: int = 2
    facts: Facts | None = None
    #: a scripted player beyond ``random`` (a name in players.PLAYERS)
    player: str | None = None
    #: False where both players can win (a general-sum game)
    zero_sum: bool = True
    #: longest reply a model seat is given (tokens)
    reply_tokens: int = 96
    #: False where the ``random`` player's moves are often illegal (the game writes its moves
    #: as templates it cannot fill, "[split L R]", "[A4 B2 C2]"): it forfeits, so a Gymnasium
    #: env for a later seat with scripted opponents can start on a finished episode
    random_plays_legally: bool = True


GAMES: tuple[Entry, ...] = (
    Entry("TicTacToe-v0", facts=tictactoe_facts, player="tictactoe", reply_tokens=16),
    Entry("KuhnPoker-v0", facts=kuhn_poker_facts, player="kuhn_poker", reply_tokens=16),
    Entry("SimpleNegotiation-v0", reply_tokens=128),
    Entry("Alquerque-v0"),
    Entry("Battleship-v0"),
    Entry("Breakthrough-v0"),
    Entry("Briscola-v0"),
    Entry("Chopsticks-v0", random_plays_legally=False),
    Entry("ColonelBlotto-v0", random_plays_legally=False),
    Entry("ConnectFour-v0"),
    Entry("Crusade-v0"),
    Entry("GameOfPureStrategy-v0"),
    Entry("GermanWhist-v0"),
    Entry("Golf-v0", random_plays_legally=False),
    Entry("HighSociety-v0"),
    Entry("IndianPoker-v0"),
    Entry("IteratedMatchingPennies-v0"),
    Entry("IteratedPrisonersDilemma-v0", reply_tokens=128),
    Entry("IteratedRockPaperScissors-v0"),
    Entry("IteratedTwoThirdsAverage-v0"),
    Entry("LinesOfAction-v0", random_plays_legally=False),
    Entry("MemoryGame-v0"),
    Entry("Nim-v0"),
    Entry("Othello-v0"),
    Entry("PigDice-v0"),
    Entry("QuantumTicTacToe-v0", random_plays_legally=False),
    Entry("SimpleBlindAuction-v0", reply_tokens=128),
    Entry("SimpleTak-v0"),
    Entry("TruthAndDeception-v0", reply_tokens=128),
    Entry("UltimateTicTacToe-v0", random_plays_legally=False),
    Entry("WildTicTacToe-v0"),
    Entry("Tak-v0", random_plays_legally=False),
    Entry("TwoDollar-v0", reply_tokens=128, random_plays_legally=False),
    Entry("IteratedUltimatumGame-v0", random_plays_legally=False),
    Entry("LiarsDice-v0", random_plays_legally=False),
    Entry("Poker-v0"),
    Entry("Snake-v0"),
    Entry("Surround-v0"),
    Entry("SantoriniBaseFixed-v0", random_plays_legally=False),
    Entry("MarketEntryGame-v0", zero_sum=False),
    # multi-player, where TextArena's game takes three
    Entry("ThreePlayerTicTacToe-v0", players=3, random_plays_legally=False),
    Entry("ThreePlayerGOPS-v0", players=3),
)

#: Adapted games whose episodes do not replay from their seed under dialogym: TextArena id ->
#: why. None today: every game above replays bit for bit (tests/adapters/test_textarena_games.py).
UNSEEDED: dict[str, str] = {}

#: Games whose seed TextArena's own loop does not keep: they draw from Python's shared global
#: ``random`` while they are played (a new deal each round, dice, a snake's food), so anything
#: else that draws from it between two steps (a sampling agent, a second episode) changes
#: the episode. dialogym gives each episode its own stream (:func:`.game.own_random`), so
#: they replay under dialogym; found by replaying each game's moves in TextArena alone with
#: and without a draw between steps.
SHARED_RANDOM: tuple[str, ...] = ("KuhnPoker-v0", "IndianPoker-v0", "PigDice-v0", "Snake-v0", "LiarsDice-v0", "Poker-v0")

#: TextArena two-player games not adapted, and why (no network at run time, no endless games).
LEFT_OUT: dict[str, str] = {
    "Debate-v0": "judged by an LLM jury over the network (OpenRouter)",
    "ScenarioPlanning-v0": "judged by an LLM jury over the network (OpenRouter)",
    "DontSayIt-v0": "downloads NLTK word lists at reset",
    "LetterAuction-v0": "downloads NLTK word lists at reset",
    "SpellingBee-v0": "downloads NLTK word lists at reset",
    "WordChains-v0": "downloads NLTK word lists at reset",
    "SpiteAndMalice-v0": "random play runs into dialogym's 2000-reply cap: too long to check or train on",
    "Stratego-v0": "random play takes 900-1600 replies: too long to check or train on",
}
