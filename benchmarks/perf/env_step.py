"""Environment step rate: dialogym's item-division negotiation against TextArena's, side by side.

Both play the same moves: chatter (messages that are neither offers nor accepts), so every
episode runs to its turn limit (10 turns in each game). Each side is driven as its users
drive it:

- ``dialogym``: one PettingZoo AEC env of ``dialogym/Negotiation-v0`` (``dialogym.make``),
  reset per episode: ``for agent in env.agent_iter(): env.last(); env.step(move)``. Each
  observation is the seat's whole chat as text (rules, every message so far).
- ``textarena_fresh`` (when ``textarena`` is importable, extra ``bench-textarena``):
  ``SimpleNegotiation-v0`` with its default wrappers, made fresh for every episode, as
  TextArena's examples do: ``env.get_observation(); env.step(move)`` until done, then
  ``env.close()``. Each observation is the rules and the game's own messages (not the
  players' chat, which its wrapper leaves out).
- ``textarena_raw_reused``: ``SimpleNegotiation-v0-raw`` (no wrappers; observations are
  TextArena's raw lists of messages, no text is built) on one env reset per episode.

One env with the default wrappers must not be reused: its observation wrapper keeps every
earlier episode's messages (it is not reset), so each step re-joins them all and the rate
falls with every episode (6,940 steps/s after 50 episodes, 752 after 400); the figures of
2026-12-01 (dialogym 18.1x TextArena) were measured that way.

Steps/s counts moves; resets and the end of each episode are inside the timed loop. Each
ratio is dialogym's steps/s over the other's (>= 1: ours is at least as fast). The sides
run interleaved, ``--reps`` times each, and the medians are reported.

    python -m dialogym.benchmarks.perf.env_step --episodes 300
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from collections.abc import Callable

GAME = "dialogym/Negotiation-v0"
TEXTARENA_GAME = "SimpleNegotiation-v0"
#: chatter: no control line (dialogym) and no [Offer]/[Accept] token (TextArena)
MOVES = (
    "Hello! What matters most to you in this split?",
    "I care a lot about some of these items; tell me about yours.",
    "Let us keep talking before anyone commits to anything.",
)


def dialogym_episodes(episodes: int) -> tuple[int, float]:
    """(steps, seconds) of ``episodes`` chatter-only episodes on one reused AEC env."""
    import dialogym

    env = dialogym.make(GAME)
    steps = 0
    started = time.perf_counter()
    for episode in range(episodes):
        env.reset(seed=episode)
        for _agent in env.agent_iter():
            _obs, _reward, termination, truncation, _info = env.last()
            env.step(None if termination or truncation else MOVES[steps % len(MOVES)])
            steps += 0 if termination or truncation else 1
    elapsed = time.perf_counter() - started
    env.close()
    return steps, elapsed


def textarena_fresh_episodes(episodes: int) -> tuple[int, float]:
    """(steps, seconds) of ``episodes`` chatter-only episodes, each on a fresh TextArena env
    with its default wrappers."""
    import textarena as ta

    steps = 0
    started = time.perf_counter()
    for episode in range(episodes):
        env = ta.make(TEXTARENA_GAME)
        steps += _textarena_episode(env, episode, steps)
    return steps, time.perf_counter() - started


def textarena_raw_episodes(episodes: int) -> tuple[int, float]:
    """(steps, seconds) of ``episodes`` chatter-only episodes on one reused TextArena env
    without wrappers."""
    import textarena as ta

    env = ta.make(f"{TEXTARENA_GAME}-raw")
    steps = 0
    started = time.perf_counter()
    for episode in range(episodes):
        steps += _textarena_episode(env, episode, steps)
    return steps, time.perf_counter() - started


def _textarena_episode(env, seed: int, steps: int) -> int:
    """Play one chatter episode on ``env``; its number of steps."""
    env.reset(num_players=2, seed=seed)
    done, taken = False, 0
    while not done:
        _player, _observation = env.get_observation()
        done, _info = env.step(MOVES[(steps + taken) % len(MOVES)])
        taken += 1
    env.close()
    return taken


def measure(sides: dict[str, Callable[[int], tuple[int, float]]], episodes: int, reps: int) -> dict[str, dict]:
    """Each side's steps/s, the median of ``reps`` runs, the sides interleaved so that load
    from other processes falls on all alike."""
    for play in sides.values():
        play(max(1, episodes // 10))  # warm-up: imports, first-use caches
    runs: dict[str, list[tuple[int, float]]] = {name: [] for name in sides}
    for _ in range(reps):
        for name, play in sides.items():
            runs[name].append(play(episodes))
    result = {}
    for name, timed in runs.items():
        steps, seconds = timed[0][0], statistics.median(s for _, s in timed)
        result[name] = {"episodes": episodes, "steps": steps, "steps_per_episode": steps / episodes,
                        "seconds": round(seconds, 4), "steps_per_s": round(steps / seconds, 1)}
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per side; the median is reported")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.reps < 1:
        parser.error("--episodes and --reps must be at least 1")

    sides: dict[str, Callable[[int], tuple[int, float]]] = {"dialogym": dialogym_episodes}
    installed = importlib.util.find_spec("textarena") is not None
    if installed:
        sides.update(textarena_fresh=textarena_fresh_episodes, textarena_raw_reused=textarena_raw_episodes)
    result: dict = {"game": GAME, **measure(sides, args.episodes, args.reps)}
    if not installed:
        result["textarena"] = "not installed (pip install 'dialogym[bench-textarena]'); measured dialogym alone"
    else:
        result["textarena_game"] = TEXTARENA_GAME
        ours = result["dialogym"]["steps_per_s"]
        result["ratio_vs_fresh"] = round(ours / result["textarena_fresh"]["steps_per_s"], 2)
        result["ratio_vs_raw_reused"] = round(ours / result["textarena_raw_reused"]["steps_per_s"], 2)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
