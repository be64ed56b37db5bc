"""Environment step rate: dialogym's item-division negotiation against TextArena's, side by side.

Both play the same moves: chatter (messages that are neither offers nor accepts), so every
episode runs to its turn limit (10 turns in each game). Each side reuses one environment,
resetting it per episode, and drives it with its own canonical loop:

- dialogym: the PettingZoo AEC env of ``dialogym/Negotiation-v0`` (``dialogym.make``):
  ``for agent in env.agent_iter(): env.last(); env.step(move)``.
- TextArena (when the ``textarena`` package is importable, extra ``bench-textarena``):
  ``SimpleNegotiation-v0`` with its default wrappers: ``env.get_observation();
  env.step(move)`` until done, then ``env.close()``.

Steps/s counts moves; resets and the end of each episode are inside the timed loop. The
``ratio`` is dialogym's steps/s over TextArena's (>= 1: ours is at least as fast).

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


def textarena_episodes(episodes: int) -> tuple[int, float]:
    """(steps, seconds) of ``episodes`` chatter-only episodes on one reused TextArena env."""
    import textarena as ta

    env = ta.make(TEXTARENA_GAME)
    steps = 0
    started = time.perf_counter()
    for episode in range(episodes):
        env.reset(num_players=2, seed=episode)
        done = False
        while not done:
            _player, _observation = env.get_observation()
            done, _info = env.step(MOVES[steps % len(MOVES)])
            steps += 1
        env.close()
    return steps, time.perf_counter() - started


def measure(play: Callable[[int], tuple[int, float]], episodes: int, reps: int) -> dict:
    play(max(1, episodes // 10))  # warm-up: imports, first-use caches
    runs = [play(episodes) for _ in range(reps)]
    steps = runs[0][0]
    seconds = statistics.median(s for _, s in runs)
    return {"episodes": episodes, "steps": steps, "steps_per_episode": steps / episodes,
            "seconds": round(seconds, 4), "steps_per_s": round(steps / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per side; the median is reported")
    args = parser.parse_args()

    result: dict = {"game": GAME, "dialogym": measure(dialogym_episodes, args.episodes, args.reps)}
    if importlib.util.find_spec("textarena") is None:
        result["textarena"] = "not installed (pip install 'dialogym[bench-textarena]'); measured dialogym alone"
    else:
        result["textarena_game"] = TEXTARENA_GAME
        result["textarena"] = measure(textarena_episodes, args.episodes, args.reps)
        result["ratio"] = round(result["dialogym"]["steps_per_s"] / result["textarena"]["steps_per_s"], 2)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
