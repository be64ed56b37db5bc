"""CPU recipe: GRPO teaches the embedded model to close deals in item division.

The learner (SmolLM2-135M with a LoRA adapter) plays ``alice`` in item division
(:mod:`dialogym.envs.games.negotiation`) against the scripted ``fair`` splitter, which
proposes half the pool by its own values and accepts any share worth half or more to it.
The game is played on moves alone (the game option ``messages=false``): with guided moves
every reply is one legal ``PROPOSE: book=.. hat=.. ball=..`` or ``ACCEPT`` line, so the
learner trains on its decisions, not on chatter, and a reply is about 12 tokens instead of
up to 96 (with messages the guided base model writes a message and no move in every reply:
0 deals in 24 test games). The reward is alice's value of her share under a deal, 0 without.

Why this skill: the base model, guided, keeps proposing and almost never accepts, so most
games run out of turns with no deal. Closing a deal that is good for oneself (accepting a
fair offer, or proposing one the other side takes) is the skill, and it is measured by both
numbers the issue names: the mean score and the agreement rate, on held-out instances.

    python -m dialogym.trainers.recipes.negotiation            # 27 minutes measured on 2 cores (docs/training.md)
    python -m dialogym.trainers.recipes.negotiation --model tiny --steps 2 --eval-episodes 8   # a smoke run
"""

from __future__ import annotations

from dialogym.agents.specs import load_agent
from dialogym.trainers.config import GRPOConfig
from dialogym.trainers.core import LEARNER
from dialogym.trainers.grpo import GRPOTrainer

from .common import (
    Clock,
    apart,
    estimate,
    fmt,
    grpo_parser,
    play_test,
    plot_curves,
    report,
    train,
    write_results,
)

GAME = "dialogym/Negotiation-v0"
RECIPE = "negotiation"
SEAT, OTHER = "alice", "bob"


def evaluate(trainer: GRPOTrainer, opponent, n: int, level: str | None) -> tuple[list[float], list[float]]:
    """The learner's score and whether a deal was struck, per greedy episode on ``n`` test instances."""
    episodes = play_test({"bot": opponent, LEARNER: trainer.agent}, {OTHER: "bot", SEAT: LEARNER}, GAME, n, level=level,
                         max_new_tokens=trainer.cfg.max_new_tokens, game_options=trainer.cfg.options())
    trainer.model.eval()
    return [e.rewards.get(SEAT, 0.0) for e in episodes], [e.metrics.get("agreed", 0.0) for e in episodes]


def main(argv: list[str] | None = None) -> dict:
    parser = grpo_parser(__doc__, RECIPE, group_size=4, instances_per_step=4, lr=2e-3, curve_episodes=32, curve_every=4)
    parser.add_argument("--opponent", default="scripted:fair", help="the other seat (scripted:fair or scripted:greedy)")
    parser.add_argument("--max-new-tokens", type=int, default=24, help="longest reply (a control line is about 12 tokens)")
    args = parser.parse_args(argv)
    clock = Clock(args.minutes)

    config = GRPOConfig(group_size=args.group_size, instances_per_step=args.instances_per_step, lr=args.lr,
                        lora_rank=args.lora_rank, temperature=args.temperature, seat=SEAT, guided=True,
                        max_new_tokens=args.max_new_tokens, game_options=["messages=false"], level=args.level, seed=args.seed, loss_type="dapo")
    trainer = GRPOTrainer(GAME, args.model, args.opponent, config, out=args.out)
    opponent = load_agent(args.opponent)

    scores, deals = evaluate(trainer, opponent, args.eval_episodes, args.level)
    before, deals_before = estimate(scores), estimate(deals)
    print(f"before: score {fmt(before)}, agreement {fmt(deals_before)} ({clock.seconds:.0f} s)", flush=True)
    history, curve = train(trainer, clock, args.steps, lambda n: evaluate(trainer, opponent, n, args.level)[0],
                           curve_every=args.curve_every, curve_episodes=args.curve_episodes, reserve=clock.seconds,
                           final_episodes=args.eval_episodes)

    scores, deals = evaluate(trainer, opponent, args.eval_episodes, args.level)
    after, deals_after = estimate(scores), estimate(deals)
    print(report("score", before, after), flush=True)
    print(report("agreement", deals_before, deals_after), flush=True)
    args.results.mkdir(parents=True, exist_ok=True)
    png = plot_curves(args.results / f"{RECIPE}.png", f"GRPO alice ({args.model}, guided) vs {args.opponent}", history,
                      curve, reward_label="training score", score_label="test score (alice's value, 0-10)",
                      marks={"base (200 episodes)": before})
    result = {"game": GAME, "seat": SEAT, "opponent": args.opponent, "model": args.model, "level": args.level or "easy",
              "config": config.model_dump(), "steps": len(history), "before": before, "after": after,
              "agreement_before": deals_before, "agreement_after": deals_after, "gain": after.value - before.value,
              "intervals_apart": apart(before, after),
              "target": "score up with the intervals apart, and no fall in the agreement rate",
              "reached": apart(before, after) and deals_after.value >= deals_before.value,
              "curve": [{"step": s, **e.as_dict()} for s, e in curve], "history": history, "plot": png.name}
    path = write_results(args.results / f"{RECIPE}.json", RECIPE, clock, **result)
    print(f"wrote {path} and {png} in {clock.seconds / 60:.1f} minutes", flush=True)
    return result


if __name__ == "__main__":
    main()
