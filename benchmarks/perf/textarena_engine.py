"""Episodes/s on TextArena's games: ``dialogym bench`` (the batched engine) against TextArena's
own one-at-a-time loop, on the same games and the same model, side by side in one run.

- ``dialogym``: :func:`~dialogym.benchmarks.runner.run_bench` (what ``dialogym bench`` runs)
  on ``textarena/<game>`` (the games of :mod:`dialogym.adapters.textarena`), self-play,
  ``--episodes`` test instances per game, every live episode's pending replies answered in one
  batched call per tick. Its results are printed as ``dialogym play`` prints them.
- ``textarena``: TextArena's loop as its README writes it, one episode after another:
  ``env = ta.make(game)`` (its default wrappers), ``env.reset(num_players=2, seed=i)``, then
  ``player_id, observation = env.get_observation(); done, info = env.step(agent(observation))``
  until done, ``env.close()``. The agent is the same model object, asked one request at a
  time (TextArena's agents are one-prompt callables), each reply capped at the same number
  of tokens as dialogym's and decoded the same way (greedy by default).

The two loops do not play identical episodes: TextArena gives an invalid move one retry and
then ends the game, dialogym re-prompts twice; TextArena's wrapper sends the whole history as
one message each turn, dialogym a chat. So replies/s and generated tokens/s are printed beside episodes/s, with
the mean prompt length of a reply on each side. Each ratio
is dialogym's rate over TextArena's (> 1: dialogym's is faster). Wall-clock time includes
everything inside each loop (prompt building, generation, the rules); the model is loaded
once and warmed up by one call, before either is timed; the two loops run back to back,
game by game, so a change in the machine's load falls on both.

    python -m dialogym.benchmarks.perf.textarena_engine --model smollm2 --episodes 8
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from dialogym.envs.files import atomic_write_json

GAMES = ("TicTacToe-v0", "KuhnPoker-v0", "SimpleNegotiation-v0")


def dialogym_rate(agent: Any, spec: str, game: str, episodes: int, max_new_tokens: int) -> tuple[dict[str, Any], list]:
    """``dialogym bench`` (in-process) on ``textarena/<game>``: its rates, and its episodes."""
    from dialogym.benchmarks.runner import BenchConfig, run_bench

    config = BenchConfig(games=[f"textarena/{game}"], models=[spec], episodes=episodes, max_new_tokens=max_new_tokens)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        _, played, _ = run_bench(config, Path(out), agents={spec: agent})
        seconds = time.perf_counter() - started
    turns = [turn for episode in played for turn in episode.turns]
    return rates(len(played), turns, seconds), played


def textarena_rate(agent: Any, game: str, episodes: int, max_new_tokens: int) -> dict[str, Any]:
    """TextArena's own loop, one episode and one reply at a time, the same model answering."""
    import textarena as ta

    from dialogym.agents.base import Request, Sampling
    from dialogym.envs import spec

    cap = min(max_new_tokens, spec(f"textarena/{game}").game_cls.max_reply_tokens)
    sampling = Sampling(temperature=0.0, max_new_tokens=cap)
    replies = []
    started = time.perf_counter()
    for seed in range(episodes):
        env = ta.make(game)
        env.reset(num_players=2, seed=seed)
        done = False
        while not done:
            _player, observation = env.get_observation()
            request = Request(messages=[{"role": "user", "content": str(observation)}], sampling=sampling, seed=seed)
            reply = agent.act([request])[0]
            done, _info = env.step(action=reply.text)
            replies.append(reply)
        env.close()
    return rates(episodes, replies, time.perf_counter() - started)


def rates(episodes: int, replies: list[Any], seconds: float) -> dict[str, Any]:
    """Rates of ``replies`` (episode turns or agent replies: both carry ``token_ids`` and
    ``prompt_token_ids`` where the backend records them)."""
    generated = sum(len(reply.token_ids or []) for reply in replies)
    prompts = sum(len(reply.prompt_token_ids or []) for reply in replies)
    return {"episodes": episodes, "replies": len(replies), "seconds": round(seconds, 2),
            "episodes_per_s": episodes / seconds, "replies_per_s": len(replies) / seconds,
            "generated_tokens": generated, "tokens_per_s": generated / seconds,
            "prompt_tokens_per_reply": round(prompts / len(replies), 1) if replies else 0.0}


def warm_up(agent: Any) -> None:
    """One small call before anything is timed (first calls pay one-off set-up costs)."""
    from dialogym.agents.base import Request, Sampling

    agent.act([Request(messages=[{"role": "user", "content": "Say hello."}], sampling=Sampling(max_new_tokens=4))])


def compare(dialogym: dict[str, Any], textarena: dict[str, Any]) -> dict[str, Any]:
    rows = {}
    for game in dialogym:
        ours, theirs = dialogym[game], textarena[game]
        rows[game] = {
            "dialogym_episodes_per_s": round(ours["episodes_per_s"], 3),
            "textarena_episodes_per_s": round(theirs["episodes_per_s"], 3),
            "episodes_ratio": round(ours["episodes_per_s"] / theirs["episodes_per_s"], 2),
            "dialogym_replies_per_s": round(ours["replies_per_s"], 2),
            "textarena_replies_per_s": round(theirs["replies_per_s"], 2),
            "replies_ratio": round(ours["replies_per_s"] / theirs["replies_per_s"], 2),
            "dialogym_tokens_per_s": round(ours["tokens_per_s"], 2),
            "textarena_tokens_per_s": round(theirs["tokens_per_s"], 2),
            "tokens_ratio": round(ours["tokens_per_s"] / theirs["tokens_per_s"], 2) if theirs["tokens_per_s"] else None,
            "dialogym": ours, "textarena": theirs,
        }
    return rows


def print_rows(rows: dict[str, Any]) -> None:
    """Per game: episodes/s, replies/s and generated tokens/s of each loop and their ratios (dialogym
    over TextArena), and the mean prompt tokens of a reply on each side."""
    print(f"{'game':22} {'episodes/s':>19} {'ratio':>6} {'replies/s':>13} {'ratio':>6} {'tokens/s':>13} {'ratio':>6} "
          f"{'prompt tokens':>13}")
    print(f"{'':22} {'dialogym  textarena':>19} {'':>6} {'dg     ta':>13} {'':>6} {'dg     ta':>13} {'':>6} {'dg    ta':>13}")
    for game, row in rows.items():
        ours, theirs = row["dialogym"], row["textarena"]
        print(f"{game:22} {row['dialogym_episodes_per_s']:>9.3f} {row['textarena_episodes_per_s']:>9.3f} "
              f"{row['episodes_ratio']:>6} {row['dialogym_replies_per_s']:>6.2f} {row['textarena_replies_per_s']:>6.2f} "
              f"{row['replies_ratio']:>6} {row['dialogym_tokens_per_s']:>6.1f} {row['textarena_tokens_per_s']:>6.1f} "
              f"{row['tokens_ratio']!s:>6} {ours['prompt_tokens_per_reply']:>6.0f} {theirs['prompt_tokens_per_reply']:>6.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2", help="model spec (the same model plays both loops)")
    parser.add_argument("--games", default=",".join(GAMES), help="TextArena ids, comma-separated")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per game on each side")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="longest reply (games cap it further)")
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    args = parser.parse_args(argv)

    from rich.console import Console

    from dialogym.adapters.textarena import register_games
    from dialogym.agents.specs import load_agent, parse_spec
    from dialogym.benchmarks.report import summary_table

    if not register_games():
        raise SystemExit("error: this benchmark needs textarena: pip install 'dialogym[textarena]'")
    games = [game.strip() for game in args.games.split(",") if game.strip()]
    agent = load_agent(parse_spec(args.model))
    warm_up(agent)
    ours, theirs, played = {}, {}, []
    for game in games:  # the two loops back to back, game by game: a machine's load drifts
        ours[game], episodes = dialogym_rate(agent, args.model, game, args.episodes, args.max_new_tokens)
        theirs[game] = textarena_rate(agent, game, args.episodes, args.max_new_tokens)
        played.extend(episodes)
    Console(width=160).print(summary_table(played, f"dialogym bench: {args.model} on {len(games)} TextArena games"))
    result = {"model": args.model, "episodes": args.episodes, "max_new_tokens": args.max_new_tokens,
              "games": compare(ours, theirs)}
    print_rows(result["games"])
    print(json.dumps(result))
    if args.out:
        atomic_write_json(Path(args.out), result)  # never a half-written results file


if __name__ == "__main__":  # pragma: no cover
    main()
