"""What the base model leaves to win in the league recipe's final cross-play: bounds on the
win rate any final checkpoint can reach against the base (``it-0``) under partner scoring
(:func:`~dialogym.benchmarks.scores.partner_score`), on the same held-out instances. The
final cross-play plays each of its instances once with the learner in either seat, so its
win rate is the mean of the two seats' on those instances, and so is the bound.

A cross-play match puts the learner in one seat and the base in the other, and compares
that team with the base's own team on the instance: 1 when only the mixed team finds the
target, 0.5 when both or neither do, 0 when only the base's does. So:

- **learner as listener**, beside the base speaker: a clue that names no attribute value
  at all (no size, colour, pattern or shape word) says nothing about which object is meant.
  At the recipe's level (``easy``: distractors drawn independently of the target, the
  order a uniform random permutation) every candidate is then equally likely the target,
  for the learner as for the base listener, so the seat's expected score on such an
  instance is 0.5 whatever the learner answers; on any other clue the learner can at best
  always be right (1 where the base team failed, 0.5 where it succeeded). The mean over the
  instances bounds the seat's expected win rate from above.
- **learner as speaker**, beside the base listener: the base listener is played with the
  scripted clue (the fewest attributes that single the target out) and with a clue naming
  all four attributes. Where its answers do not move with the clue, no speaker can win a
  match there; the best of the two is reported (a measurement, not a proof).

    python -m dialogym.trainers.recipes.league_bound              # about 6 minutes on 2 cores
    python -m dialogym.trainers.recipes.league_bound --model tiny --final-episodes 8
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dialogym.agents.base import Reply, Sampling
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent
from dialogym.benchmarks.scores import partner_score
from dialogym.envs.games.reference import ATTRIBUTE_ORDER, ATTRIBUTES
from dialogym.trainers.league import eval_instances, eval_seeds

from .common import LIVE, Clock, write_results
from .league_reference import FINAL_KEY, GAME

RECIPE = "league_bound"
#: every attribute value of the game: a clue with none of them names no object
OBJECT_WORDS = frozenset(v for values in ATTRIBUTES.values() for v in values)


class FullClue:
    """A speaker whose clue names all four attributes of the target."""

    name = "full-clue"
    guided = False

    def act(self, requests: list[Any]) -> list[Reply]:
        return [Reply(text="CLUE: the " + " ".join(r.view["target"][a] for a in ATTRIBUTE_ORDER)) for r in requests]


def names_an_object(clue: str) -> bool:
    return bool(OBJECT_WORDS & set(re.findall(r"[a-z]+", clue.lower())))


def partner(mixed: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The expected partner score of a mixed team that succeeds with probability ``mixed``
    beside a base team that did (1) or did not (0)."""
    return np.where(base > 0, 0.5 * mixed, 0.5 + 0.5 * mixed)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="the base model (the league's it-0 is it with a zero adapter)")
    parser.add_argument("--final-episodes", type=int, default=200, help="the league recipe's final matches")
    parser.add_argument("--results", default="docs/results")
    args = parser.parse_args(argv)
    clock = Clock(60.0)
    # the final cross-play's instances: it plays each in both seats
    seeds = eval_seeds(FINAL_KEY, eval_instances(args.final_episodes, 2))
    agents = {"base": load_agent(f"{args.model}+guided"), "scripted": load_agent("scripted"), "full": FullClue()}
    engine = RolloutEngine(agents, sampling=Sampling(temperature=0.0, max_new_tokens=48), max_concurrent=LIVE)

    def play(speaker: str, listener: str) -> list[Any]:
        return engine.run([EpisodeSpec(GAME, seed=s, seats={"speaker": speaker, "listener": listener}, split="test")
                           for s in seeds])

    def success(episodes: list[Any]) -> np.ndarray:
        return np.array([e.metrics.get("success", 0.0) for e in episodes])

    def answers(episodes: list[Any]) -> dict[str, float]:
        counts = Counter(str(t.move.get("number")) for e in episodes for t in e.turns if t.seat == "listener" and t.move)
        return {k: round(v / len(episodes), 3) for k, v in sorted(counts.items())}

    alone = play("base", "base")
    base = success(alone)
    clues = [next((t.move.get("text", "") for t in e.turns if t.seat == "speaker" and t.move), "") for e in alone]
    informative = np.array([names_an_object(c) for c in clues])
    listener_seat = float(np.where(informative, partner(np.ones_like(base), base), 0.5).mean())
    speakers = {}
    for name in ("scripted", "full"):
        episodes = play(name, "base")
        scores = [partner_score(e, a, name) for e, a in zip(episodes, alone, strict=True)]  # as the league scores it
        speakers[name] = {"success": float(success(episodes).mean()), "partner_score": float(np.mean(scores)),
                          "base_listener_answers": answers(episodes)}
    speaker_seat = max(s["partner_score"] for s in speakers.values())
    result = {
        "game": GAME, "model": args.model, "instances": len(seeds),
        "base_team_success": float(base.mean()), "base_listener_answers": answers(alone),
        "base_clues_naming_no_object": float(1 - informative.mean()),
        "most_common_base_clues": Counter(clues).most_common(3),
        "listener_seat_bound": listener_seat, "speaker_seat_measured": speakers,
        "win_rate_bound": (listener_seat + speaker_seat) / 2,
    }
    print(f"base team success {base.mean():.3f}; base clues naming no object {1 - informative.mean():.3f}; "
          f"learner as listener at most {listener_seat:.3f}; as speaker (best clue measured) {speaker_seat:.3f}; "
          f"win rate at most about {result['win_rate_bound']:.3f}", flush=True)
    path = write_results(Path(args.results) / f"{RECIPE}.json", RECIPE, clock, **result)
    print(f"wrote {path} in {clock.seconds / 60:.1f} minutes", flush=True)
    return result


if __name__ == "__main__":
    main()
