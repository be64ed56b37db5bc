"""The learning recipes run end to end on the tiny model and write what they promise: a
results file naming the command, commit and machine, before/after estimates with intervals,
and learning curves as PNG files. (The numbers themselves come from the embedded model:
docs/results/.)"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

import numpy as np
import pytest

from dialogym.agents.specs import load_agent
from dialogym.trainers.recipes import (
    common,
    league_kuhn,
    league_negotiation,
    league_reference,
    listener,
    negotiation,
)
from dialogym.trainers.recipes.common import apart, estimate


def test_estimates_carry_bootstrap_intervals_and_apart_means_no_overlap():
    low, high = estimate([0.0] * 80 + [1.0] * 20), estimate([0.0] * 20 + [1.0] * 80)
    assert low.lo < low.value < low.hi and low.n == 100
    assert apart(low, high) and not apart(high, low) and not apart(low, low)


class FakeTrainer:
    """Steps that take no time and report the flat-group shares given."""

    def __init__(self, flat):
        self.flat, self.steps = list(flat), 0

    def train(self, steps, log=True):
        self.steps += 1
        return [{"step": self.steps - 1, "mean_reward": 1.0, "loss": 0.0, "seconds": 0.0, "flat_groups": self.flat.pop(0)}]


def test_training_stops_once_every_group_has_been_flat_for_three_steps():
    trainer = FakeTrainer([0.5, 1.0, 1.0, 0.9, 1.0, 1.0, 1.0, 0.0, 0.0])
    history, curve = common.train(trainer, common.Clock(60), 9, lambda n: [1.0] * n, curve_every=2, curve_episodes=4,
                                  reserve=0.0)
    assert len(history) == 7 and [s for s, _ in curve] == [0, 2, 4, 6]


def test_training_stops_when_the_budget_would_not_hold_the_final_evaluation():
    trainer = FakeTrainer([0.0] * 5)
    history, _ = common.train(trainer, common.Clock(1.0), 5, lambda n: [0.0] * n, curve_every=0, curve_episodes=0,
                              reserve=120.0)
    assert len(history) == 1  # a 60 s budget cannot keep 120 s for the final evaluation


def test_the_reserve_grows_when_held_out_episodes_grow_slower():
    import time

    def evaluate(n):
        time.sleep(0.05)  # 0.05 s for one episode: 200 final ones would need 10 s
        return [1.0] * n

    trainer = FakeTrainer([0.0] * 5)
    history, _ = common.train(trainer, common.Clock(5 / 60), 5, evaluate, curve_every=1, curve_episodes=1, reserve=0.0,
                              final_episodes=200)
    assert len(history) == 1  # a 5 s budget cannot hold the 10 s final evaluation the first curve point foretells



def git(*args, cwd):
    config = ["-c", "user.name=x", "-c", "user.email=x", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *config, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_commit_is_unknown_outside_a_git_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # git looks no higher than tmp_path
    monkeypatch.chdir(tmp_path)
    assert common.commit() == "unknown"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_commit_is_the_head_of_the_repository_holding_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    (repo / "notes.txt").write_text("one")
    git("add", "notes.txt", cwd=repo)
    git("commit", "-q", "-m", "first", cwd=repo)
    head = git("rev-parse", "HEAD", cwd=repo)
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    assert common.commit() == head
    (repo / "notes.txt").write_text("two")  # a tracked file changed
    assert common.commit() == f"{head}+dirty"


@pytest.mark.slow
def test_the_listener_recipe_writes_results_and_curves(tmp_path):
    result = listener.main(["--model", "tiny", "--steps", "2", "--sft-instances", "0", "--eval-episodes", "6", "--curve-episodes", "3",
                            "--curve-every", "1", "--out", str(tmp_path / "run"), "--results", str(tmp_path / "res")])
    record = json.loads((tmp_path / "res" / "listener.json").read_text())
    assert record["steps"] == result["steps"] == 2 and len(record["history"]) == 2
    assert {"value", "lo", "hi", "n"} <= set(record["before"]) and record["after"]["n"] == 6
    assert record["machine"]["cores"] >= 1 and isinstance(record["machine"]["cpu_bf16"], bool) and record["commit"] and "recipes.listener" in record["command"]
    assert [p["step"] for p in record["curve"]] == [0, 1, 2]
    assert (tmp_path / "res" / "listener.png").read_bytes()[:4] == b"\x89PNG"
    assert record["gain"]["lo"] <= record["gain"]["value"] <= record["gain"]["hi"]  # paired, per instance
    assert record["curve_instances"].startswith("validation") and "clean" in record


def test_the_listener_recipes_defaults_are_the_settings_of_its_recorded_run():
    import shlex
    from pathlib import Path

    recorded = json.loads((Path(__file__).parents[2] / "docs/results/listener.json").read_text())
    words = shlex.split(recorded["command"])[3:]  # after "python -m <module>"
    given = vars(listener.parser().parse_args(words))
    defaults = vars(listener.parser().parse_args([]))
    for key in ("steps", "sft_instances", "sft_steps", "sft_lr", "lr", "instances_per_step", "group_size", "curve_every"):
        assert defaults[key] == given[key], key


@pytest.mark.slow
def test_the_league_recipe_plays_the_final_checkpoint_against_the_base(tmp_path):
    result = league_reference.main(["--model", "tiny", "--iterations", "1", "--episodes", "2", "--eval-episodes", "2",
                                    "--sft-instances", "4", "--sft-steps", "1",
                                    "--eval-opponents", "1", "--final-episodes", "4", "--out", str(tmp_path / "league"),
                                    "--results", str(tmp_path / "res")])
    record = json.loads((tmp_path / "res" / "league_reference.json").read_text())
    # 4 matches: 2 instances, each in both seats; the interval resamples the instances
    assert record["final"] == "it-1" and record["win_rate_vs_base"]["n"] == 2 == result["win_rate_vs_base"].n
    assert set(record["win_rate_by_learner_seat"]) == {"speaker", "listener"}
    assert all(sum(counts.values()) == 2 for counts in record["outcomes_by_learner_seat"].values())
    assert record["sft_warm_start"]["rows"] == 8  # both seats of 4 instances
    assert "it-0" in record["ratings"] and (tmp_path / "res" / "league_reference.png").stat().st_size > 1000


def test_the_competitive_league_recipe_evaluates_the_final_checkpoint_and_solves_the_pools_metagame(tmp_path):
    result = league_negotiation.main(["--model", "tiny", "--iterations", "2", "--episodes", "2", "--eval-episodes", "2",
                                      "--final-episodes", "4", "--panel-episodes", "6", "--payoff-episodes", "2",
                                      "--out", str(tmp_path / "league"), "--results", str(tmp_path / "res")])
    record = json.loads((tmp_path / "res" / "league_negotiation.json").read_text())
    assert (record["final"], record["middle"]) == ("it-2", "it-1") and record["game_options"] == list(league_negotiation.OPTIONS)
    assert record["vs_base"]["matches"] == 4 == 2 * result["vs_base"]["win_rate"].n  # 2 instances, each in both seats
    assert record["vs_middle"]["opponent"] == "it-1" and record["vs_panel"]["matches"] == 6
    members = record["metagame"]["players"]
    assert members == ["it-0", "it-1", "it-2", *league_negotiation.PANEL] and record["metagame"]["missing"] == []
    assert abs(sum(record["metagame"]["nash"]["mixture"].values()) - 1) < 1e-6
    assert set(record["targets"]) == {"read_from", "1_vs_base", "2_vs_middle", "3_ratings", "4_vs_panel", "5_nash"}
    assert record["targets"]["read_from"] == "sampled" and record["sampled"]["temperature"] == 1.0
    assert set(record["vs_panel"]["by_opponent"]) == set(league_negotiation.PANEL)
    assert "NaN" not in (tmp_path / "res" / "league_negotiation.json").read_text()  # strict JSON: null where undefined
    assert (tmp_path / "res" / "league_negotiation.png").stat().st_size > 1000


def test_the_kuhn_league_recipe_reads_its_targets_greedy_and_measures_chips_against_the_nash_panel(tmp_path):
    result = league_kuhn.main(["--model", "tiny", "--iterations", "2", "--episodes", "4", "--group-size", "2", "--eval-episodes", "2",
                               "--final-episodes", "4", "--panel-episodes", "6", "--payoff-episodes", "1",
                               "--out", str(tmp_path / "league"), "--results", str(tmp_path / "res"), "--tag", "_seed0"])
    record = json.loads((tmp_path / "res" / "league_kuhn_seed0.json").read_text())
    assert record["game"] == "dialogym/KuhnPoker-v0" and record["targets"]["read_from"] == "greedy"
    assert record["command"].split()[:3] == ["python", "-m", "dialogym.trainers.recipes.league_kuhn"]
    assert isinstance(record["machine"]["cpu_bf16"], bool)  # the precision the checkpoints played in
    assert record["vs_base"] == record["greedy"]["vs_base"] and record["greedy"]["temperature"] == 0.0
    # two-hand matches in training and in every evaluation, each hand credited alone, a quarter of the draws the base
    assert record["config"]["train_game_options"] == [] and record["game_options"] == ["hands=2"]
    assert record["config"]["sampler"] == "0.25*base+0.75*pfsp" and record["config"]["learner"]["credit"] == "round"
    # every deal in both seatings, the pool greedy, the learner hot: the recipe's defaults reach the league
    assert record["config"]["paired_training"] is True and record["config"]["opponent_temperature"] == 0.0
    assert record["config"]["learner"]["temperature"] == 5.0
    panel = record["vs_panel"]
    assert panel["matches"] == 6 and {"chips_base", "chips_final", "chips_gain", "win_base", "win_final"} <= set(panel)
    # two instances per panel member (6 matches, each instance in both seats): the per-member estimates count them
    assert {member: stats["chips_final"]["n"] for member, stats in panel["by_opponent"].items()} == dict.fromkeys(league_kuhn.PANEL, 2)
    assert -1.0 <= panel["chips_final"]["value"] <= 2.0 and 0.0 <= panel["win_final"]["value"] <= 1.0
    # target 5 beside the league's own meta-game: the Nash of its checkpoints without the panel
    league_only = record["targets"]["5_nash"]["checkpoints_only"]
    assert set(league_only["mixture"]) == {"it-0", "it-1", "it-2"} and sum(league_only["mixture"].values()) == pytest.approx(1.0, abs=1e-3)
    # how each played with each card: every model turn is counted once, as a bet-or-check or a call-or-fold choice
    for player in ("it-0", "it-2"):
        play = panel["play"][player]
        assert set(play) == {"J", "Q", "K"} and sum(row["open"] + row["facing"] for row in play.values()) > 0
        assert all(row["bet"] is None or 0.0 <= row["bet"] <= 1.0 for row in play.values())
    assert record["metagame"]["players"] == ["it-0", "it-1", "it-2", *sorted(league_kuhn.PANEL)]
    assert result["vs_middle"]["win_rate"].n == 2 and (tmp_path / "res" / "league_kuhn_seed0.png").stat().st_size > 1000
    # every checkpoint's exact move probabilities, each spot and card of the first hand
    assert set(record["policy"]) == {"it-0", "it-1", "it-2"}
    assert all(set(table) == set(league_kuhn.SPOTS) and all(set(row) == {"J", "Q", "K"} and all(0 <= p <= 1 for p in row.values())
                                                              for row in table.values()) for table in record["policy"].values())


def test_the_kuhn_policy_table_reads_each_spots_move_probabilities_off_the_model():
    """The table gives P(bet) (or, facing a bet, P(call)) between the two open moves of each
    spot and card: the chosen move's recorded log-prob of one greedy guided reply per spot,
    all in one call; the chats are the first hand's, with the player's card in them."""
    from dialogym.agents.base import Reply
    from dialogym.agents.guidance import literal_moves

    class Weighs:
        """Bets (calls) 3 times as likely as checks (folds) with a King, a third as likely with a Jack."""

        def __init__(self):
            self.asked, self.calls = [], 0

        def act(self, requests):
            self.calls += 1
            replies = []
            for request in requests:
                assert request.sampling.guided and request.sampling.temperature == 0
                card = re.search(r"Your card: ([JQK])", request.messages[-1]["content"]).group(1)
                moves = literal_moves(request.grammar)
                self.asked.append((card, tuple(moves)))
                bold = {"K": 0.75, "Q": 0.5, "J": 0.25}[card]
                aggressive, timid = (m for m in ("[bet]", "[call]", "[check]", "[fold]") if m in moves)
                move, p = (aggressive, bold) if bold >= 0.5 else (timid, 1 - bold)
                # the end of sequence last, with a log-prob of its own (several end tokens to choose from)
                replies.append(Reply(text=move, token_ids=[1, 2, 3], logprobs=[0.0, math.log(p), -0.3]))
            return replies

    agent = Weighs()
    table = league_kuhn.policy(agent, {"hands": 4})
    for spot in league_kuhn.SPOTS:
        assert table[spot] == {"K": 0.75, "Q": 0.5, "J": 0.25}
    assert sorted({moves for _, moves in agent.asked}) == [("[call]", "[fold]"), ("[check]", "[bet]")]
    assert len(agent.asked) == len(league_kuhn.SPOTS) * 3 and agent.calls == 1


def test_the_kuhn_policy_of_a_model_is_its_guided_choice_at_temperature_one():
    import torch

    from dialogym.agents.specs import load_agent

    agent = load_agent("tiny")  # a token a byte: "[check]" and "[bet]" part at "c" or "b" after "["
    table = league_kuhn.policy(agent, {"hands": 2})
    for (spot, card), (chat, _) in league_kuhn.spot_chats({"hands": 2}).items():
        ids = agent.encode(chat) + agent.tokenizer("[", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = agent.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
        bold, timid = ("b", "c") if spot in ("open", "after_check") else ("c", "f")  # [bet]/[check], [call]/[fold]
        pair = agent.tokenizer.convert_tokens_to_ids([bold, timid])
        assert table[spot][card] == pytest.approx(float(torch.softmax(logits[pair], -1)[0]), abs=2e-4)


def test_the_kuhn_play_summary_reads_each_cards_bets_and_calls_off_the_prompts():
    from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
    from dialogym.agents.specs import load_agent

    engine = RolloutEngine({name: load_agent(f"scripted:{name}") for name in ("aggressive", "passive", "simple")})
    played = engine.run([EpisodeSpec(game=league_kuhn.GAME, seed=seed, seats=dict(zip(("player_0", "player_1"), order, strict=True)))
                         for seed in range(12) for order in (("aggressive", "passive"), ("passive", "simple"))])
    aggressive = league_kuhn.play_summary(played[::2], "aggressive")
    passive = league_kuhn.play_summary(played, "passive")
    simple = league_kuhn.play_summary(played[1::2], "simple")
    assert all(row["bet"] in (1.0, None) and row["call"] in (1.0, None) for row in aggressive.values())
    assert all(row["bet"] == 0.0 for row in passive.values()) and passive["J"]["call"] == 1.0  # the aggressive one bets into it
    assert simple["K"]["bet"] == 1.0 and simple["J"]["bet"] == simple["Q"]["bet"] == 0.0
    assert sum(row["open"] + row["facing"] for row in aggressive.values()) == sum(
        sum(1 for t in e.turns if e.seats[t.seat] == "aggressive") for e in played[::2])


def test_the_league_recipe_names_its_middle_checkpoint_and_weighs_the_last_third():
    from dialogym.benchmarks.metagame import metagame

    assert [league_negotiation.middle(n) for n in (2, 7, 8)] == ["it-1", "it-4", "it-4"]
    # it-2 beats everyone, so the Nash mixture is all on it: the last third of it-0..it-2
    game = metagame([("it-2", "it-0", 1.0), ("it-2", "it-1", 1.0), ("it-1", "it-0", 0.5), ("it-2", "bot", 1.0),
                     ("it-0", "bot", 0.5), ("it-1", "bot", 0.5)])
    assert league_negotiation.last_third_weight(game, ["it-0", "it-1", "it-2"]) == pytest.approx(1.0)
    assert np.isnan(league_negotiation.last_third_weight(game, ["it-0", "it-1"]))  # no weight on any of them
    with pytest.raises(SystemExit):
        league_negotiation.parse(["--iterations", "1"])


@pytest.mark.slow
def test_the_listener_recipe_reports_its_sft_warm_start_apart_from_grpo(tmp_path):
    result = listener.main(["--model", "tiny", "--steps", "1", "--eval-episodes", "4", "--curve-every", "0",
                            "--sft-instances", "8", "--sft-steps", "2", "--out", str(tmp_path / "run"),
                            "--results", str(tmp_path / "res")])
    record = json.loads((tmp_path / "res" / "listener.json").read_text())
    warm = record["sft_warm_start"]
    assert warm["instances"] == 8 and warm["steps"] == 2 and warm["after"]["n"] == 4
    assert result["sft_warm_start"]["after"].n == 4 and record["steps"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("seat", ["alice", "bob"])
def test_the_negotiation_recipe_reports_paired_gains_against_its_opponent_and_the_held_out_panel(tmp_path, seat):
    result = negotiation.main(["--model", "tiny", "--seat", seat, "--steps", "1", "--group-size", "2",
                               "--instances-per-step", "2", "--eval-episodes", "4", "--curve-episodes", "2",
                               "--curve-every", "1", "--out", str(tmp_path / "run"), "--results", str(tmp_path / "res")])
    record = json.loads((tmp_path / "res" / f"negotiation_{seat}.json").read_text())
    assert record["game"] == "dialogym/Negotiation-v1" and record["seat"] == seat and record["opponent"] == "scripted:fair"
    assert record["config"]["game_options"] == ["messages=false"] and isinstance(record["clean"], bool)
    assert record["reward_view"] == "general"
    assert "recipes.negotiation" in record["command"] and record["reached"] == result["reached"]
    table = record["evaluation"]
    panel = ["scripted:panel:firm", "scripted:panel:slow", "scripted:panel:tit"]
    assert list(table) == ["scripted:fair", *panel, "panel"]
    assert table["scripted:fair"]["score_gain"]["n"] == 4 == table["panel"]["score_gain"]["n"]
    assert [table[p]["score_gain"]["n"] for p in panel] == [2, 1, 1]  # the 4 test instances dealt out
    for entry in table.values():
        for key in ("score_before", "score_after", "score_gain", "agreement_before", "agreement_after", "agreement_gain"):
            assert entry[key]["lo"] <= entry[key]["value"] <= entry[key]["hi"]
    assert [p["step"] for p in record["curve"]] == [0, 1]
    assert (tmp_path / "res" / f"negotiation_{seat}.png").read_bytes()[:4] == b"\x89PNG"


def test_the_negotiation_recipe_refuses_to_train_against_the_held_out_panel(capsys):
    with pytest.raises(SystemExit):
        negotiation.main(["--model", "tiny", "--opponent", "scripted:panel:firm"])
    assert "held-out panel" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the second of several too
        negotiation.parse(["--opponent", "scripted:fair", "--opponent", "scripted:panel:slow"])
    assert "--opponent scripted:panel:slow is in the held-out panel" in capsys.readouterr().err


def test_the_negotiation_recipe_trains_against_fair_unless_given_opponents():
    assert negotiation.parse([]).opponents == ["scripted:fair"]
    given = negotiation.parse(["--opponent", "scripted:greedy", "--opponent", "scripted:fair", "--opponent", "scripted:greedy"])
    assert given.opponents == ["scripted:greedy", "scripted:fair"]  # in order, once each


def test_a_paired_gain_is_the_mean_difference_with_an_interval_over_instances():
    gain = common.paired_gain([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 5.0, 4.0])
    assert gain.value == pytest.approx(0.75) and gain.n == 4 and gain.lo <= gain.value <= gain.hi
    same = common.paired_gain([3.0, 7.0, 1.0], [3.0, 7.0, 1.0])
    assert (same.value, same.lo, same.hi) == (0.0, 0.0, 0.0)
    # the same shift on every instance is certain however much the instances differ
    shifted = common.paired_gain([0.0, 9.0, 2.0, 5.0], [1.0, 10.0, 3.0, 6.0])
    assert shifted.lo == shifted.hi == 1.0 and common.above_zero(shifted)
    with pytest.raises(ValueError, match="same instances"):
        common.paired_gain([1.0], [1.0, 2.0])


def test_a_results_file_says_whether_its_commit_was_clean(tmp_path):
    clock = common.Clock(1.0)
    record = json.loads(common.write_results(tmp_path / "r.json", "negotiation_bob", clock, module="negotiation").read_text())
    assert record["clean"] == common.is_clean(clock.commit) and record["recipe"] == "negotiation_bob"
    assert "dialogym.trainers.recipes.negotiation" in record["command"]
    assert not common.is_clean("abc+dirty") and not common.is_clean("unknown") and common.is_clean("abc")


def test_the_league_bound_reports_what_the_base_leaves_to_win(tmp_path):
    from dialogym.trainers.recipes import league_bound

    result = league_bound.main(["--model", "tiny", "--final-episodes", "6", "--results", str(tmp_path)])  # 3 instances, both seats
    record = json.loads((tmp_path / "league_bound.json").read_text())
    assert record["instances"] == 3 and record["command"].startswith("python -m dialogym.trainers.recipes.league_bound")
    # a listener right on every informative clue and at chance on the others never loses on average
    assert 0.5 <= result["listener_seat_bound"] <= 1.0
    assert set(result["speaker_seat_measured"]) == {"scripted", "full"}
    assert result["win_rate_bound"] <= 1.0


def test_the_bound_counts_clues_without_object_words_as_chance():
    from dialogym.trainers.recipes.league_bound import names_an_object, partner

    assert names_an_object("the Small red one") and not names_an_object("<a short description that tells the target apart>")
    # base team right: a mixed team can only tie (0.5) or lose; wrong: tie or win
    assert partner(np.array([1.0, 1 / 3, 1.0]), np.array([1.0, 0.0, 0.0])).tolist() == pytest.approx([0.5, 2 / 3, 1.0])


def test_a_recipe_s_training_options_are_its_default_until_given():
    from dialogym.trainers.recipes import league_zero_sum

    assert league_zero_sum.parse(league_kuhn.SETUP, []).train_options == []
    given = league_zero_sum.parse(league_kuhn.SETUP, ["--train-option", "hands=2", "--train-option", "x=1"])
    assert given.train_options == ["hands=2", "x=1"]
    assert league_zero_sum.config_of(league_kuhn.SETUP, given).train_options() == {"hands": 2, "x": 1}


def test_a_recipe_s_sampler_reaches_the_league_and_a_bad_one_is_one_line(capsys):
    from dialogym.trainers.recipes import league_zero_sum

    assert league_zero_sum.config_of(league_kuhn.SETUP, league_zero_sum.parse(league_kuhn.SETUP, [])).sampler == "0.25*base+0.75*pfsp"
    given = league_zero_sum.parse(league_kuhn.SETUP, ["--sampler", "pfsp"])
    assert league_zero_sum.config_of(league_kuhn.SETUP, given).sampler == "pfsp"
    with pytest.raises(SystemExit):
        league_zero_sum.parse(league_kuhn.SETUP, ["--sampler", "0.5*base+pfsp"])
    assert "--sampler: sampler '0.5*base+pfsp': write a mixture as" in capsys.readouterr().err


def test_the_kuhn_league_can_warm_start_on_random_moves_and_a_panel_player_is_refused(tmp_path, capsys):
    import dataclasses

    from dialogym.trainers.recipes import league_zero_sum

    result = league_kuhn.main(["--model", "tiny", "--iterations", "2", "--episodes", "4", "--group-size", "2", "--eval-episodes", "2",
                               "--final-episodes", "2", "--panel-episodes", "3", "--payoff-episodes", "0", "--sft-instances", "2",
                               "--sft-steps", "1", "--out", str(tmp_path / "league"), "--results", str(tmp_path / "res")])
    warm = result["sft_warm_start"]
    assert warm["player"] == "scripted:random" and warm["steps"] == 1 and warm["rows"] > 0  # every reply, won or lost
    with pytest.raises(ValueError, match="in the held-out panel"):
        league_zero_sum.main(dataclasses.replace(league_kuhn.SETUP, warm_start_player="scripted:nash"), ["--model", "tiny"])
    with pytest.raises(SystemExit):
        league_negotiation.main(["--model", "tiny", "--sft-instances", "2"])
    assert "has no warm-start player" in capsys.readouterr().err


def test_the_negotiation_recipe_can_train_on_the_zero_sum_view_and_still_scores_the_learners_own_score():
    from types import SimpleNamespace

    from dialogym.trainers.config import GRPOConfig

    assert negotiation.parse([]).reward_view == "general"
    assert negotiation.parse(["--reward-view", "zero_sum"]).reward_view == "zero_sum"
    # its own folder and results name: a zero-sum run never overwrites the general view's
    assert negotiation.parse(["--seat", "bob"]).out.name == "negotiation_bob"
    assert negotiation.parse(["--seat", "bob", "--reward-view", "zero_sum"]).out.name == "negotiation_bob_zero_sum"
    with pytest.raises(SystemExit):
        negotiation.parse(["--reward-view", "margin"])

    def learner(*options: str) -> SimpleNamespace:  # a trainer's face as play() sees it, a scripted player in the seat
        cfg = GRPOConfig(seat="bob", max_new_tokens=24, game_options=["messages=false", *options])
        return SimpleNamespace(agent=load_agent("scripted:greedy"), cfg=cfg, model=SimpleNamespace(eval=lambda: None))

    fair = load_agent("scripted:fair")
    general = negotiation.play(learner(), fair, "bob", 6, None)
    zero_sum = negotiation.play(learner("reward_view=zero_sum"), fair, "bob", 6, None)
    assert zero_sum == general  # the evaluation plays the general view whatever the training view
    assert min(general[0]) >= 0 and any(score > 0 for score in general[0])


def test_the_kuhn_recipe_s_defaults_reach_the_league_and_the_beta_flag_reaches_the_learner():
    from dialogym.trainers.recipes import league_zero_sum

    config = league_zero_sum.config_of(league_kuhn.SETUP, league_zero_sum.parse(league_kuhn.SETUP, []))
    assert (config.iterations, config.learner.beta, config.learner.credit, config.learner.lr) == (16, 0.0, "round", 2e-3)
    assert league_zero_sum.middle(config.iterations) == "it-8"
    assert (config.opponent_temperature, config.base_temperature) == (0.0, None)
    given = league_zero_sum.config_of(league_kuhn.SETUP, league_zero_sum.parse(league_kuhn.SETUP, ["--beta", "0.1"]))
    assert given.learner.beta == 0.1
    given = league_zero_sum.config_of(league_kuhn.SETUP, league_zero_sum.parse(league_kuhn.SETUP, ["--base-temperature", "1"]))
    assert (given.opponent_temperature, given.base_temperature) == (0.0, 1.0)


def test_the_recipes_gate_and_rollback_flags_reach_the_league_and_a_rollback_needs_a_gate(capsys):
    from dialogym.trainers.recipes import league_zero_sum

    config = league_zero_sum.config_of(league_kuhn.SETUP, league_zero_sum.parse(league_kuhn.SETUP, []))
    assert (config.gate, config.rollback) == (None, False)
    given = league_zero_sum.parse(league_kuhn.SETUP, ["--gate", "0.5", "--rollback"])
    config = league_zero_sum.config_of(league_kuhn.SETUP, given)
    assert (config.gate, config.rollback) == (0.5, True)
    with pytest.raises(SystemExit):
        league_zero_sum.parse(league_kuhn.SETUP, ["--rollback"])
    assert "--rollback undoes what the gate turns away: give --gate too" in capsys.readouterr().err


def test_a_gated_kuhn_recipe_evaluates_the_checkpoints_the_gate_admitted(tmp_path, monkeypatch):
    # it-2 loses to the best member and is turned away (and undone): the middle checkpoint
    # named before the run, it-2, is then the last admitted by iteration 2, it-1
    from dialogym.trainers.league import League, PairedMatches

    def evaluate(self, opponents, iteration, episodes=None):
        score = 0.25 if iteration == 2 else 0.75
        return {o: PairedMatches(o, ("player_0", "player_1"), (0,), ((score, score),)) for o in opponents}

    monkeypatch.setattr(League, "_evaluate", evaluate)
    result = league_kuhn.main(["--model", "tiny", "--iterations", "3", "--episodes", "4", "--group-size", "2", "--eval-episodes", "2",
                               "--final-episodes", "2", "--panel-episodes", "6", "--payoff-episodes", "1", "--gate", "0.5",
                               "--rollback", "--out", str(tmp_path / "league"), "--results", str(tmp_path / "res")])
    assert (result["final"], result["middle"]) == ("it-3", "it-1")
    assert [line["admitted"] for line in result["league"]] == [True, False, True]
    assert [line["rolled_back"] for line in result["league"]] == [0.0, 1.0, 0.0]
    assert result["vs_middle"]["opponent"] == "it-1" and "it-2" not in result["ratings"]
    assert result["targets"]["3_ratings"]["target"] == "it-3's rating interval above it-1's"
