"""The empirical meta-game: the payoff table, its Nash mixture, exploitability, the files and the bench run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dialogym.benchmarks.metagame import exploitability, metagame, nash, payoff_table, solve, write_metagame
from dialogym.cli import app

#: Rock-paper-scissors as scores of the row (win 1, tie 0.5, loss 0): rock, paper, scissors.
RPS = np.array([[0.5, 0.0, 1.0], [1.0, 0.5, 0.0], [0.0, 1.0, 0.5]])


def test_nash_of_rock_paper_scissors_is_uniform_with_value_zero():
    mixture, value = nash(RPS - 0.5)
    assert mixture == pytest.approx([1 / 3] * 3)
    assert value == pytest.approx(0.0, abs=1e-9)
    assert exploitability(RPS - 0.5, mixture) == pytest.approx(0.0, abs=1e-9)


def test_nash_puts_all_weight_on_a_strategy_that_beats_every_other():
    scores = np.array([[0.5, 0.9, 0.7], [0.1, 0.5, 0.6], [0.3, 0.4, 0.5]])
    mixture, value = nash(scores - 0.5)
    assert mixture == pytest.approx([1.0, 0.0, 0.0], abs=1e-9)
    assert value == pytest.approx(0.0, abs=1e-9)


def test_nash_gives_a_dominated_strategy_no_weight():
    # rock-paper-scissors plus "dud", which every other strategy beats: the uniform mixture of
    # rock, paper and scissors dominates it, and the equilibrium stays rock-paper-scissors' own
    scores = np.full((4, 4), 0.5)
    scores[:3, :3] = RPS
    scores[:3, 3] = [0.8, 0.9, 0.9]
    scores[3, :3] = 1 - scores[:3, 3]
    mixture, value = nash(scores - 0.5)
    assert mixture[3] == pytest.approx(0.0, abs=1e-9)
    assert mixture[:3] == pytest.approx([1 / 3] * 3)
    assert value == pytest.approx(0.0, abs=1e-9)


def test_nash_of_a_general_zero_sum_matrix_game_has_its_known_value():
    # matching pennies with a bias: the row gains 3 on (H, H), 1 on (T, T), loses 2 otherwise
    mixture, value = nash(np.array([[3.0, -2.0], [-2.0, 1.0]]))
    assert mixture == pytest.approx([3 / 8, 5 / 8])
    assert value == pytest.approx(-1 / 8)


def test_of_several_equilibria_nash_takes_the_most_even():
    assert nash(np.zeros((4, 4)))[0] == pytest.approx([0.25] * 4)  # every game a tie
    # a and its clone a' beat b: any split of weight between a and a' is an equilibrium
    clones = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5], [-0.5, -0.5, 0.0]])
    assert nash(clones)[0] == pytest.approx([0.5, 0.5, 0.0])


def test_nash_refuses_a_matrix_with_missing_cells():
    with pytest.raises(ValueError, match="missing"):
        nash(np.array([[0.0, np.nan], [np.nan, 0.0]]))


PAIRINGS = [("a", "b", 1.0), ("b", "a", 0.0), ("a", "b", 0.5), ("a", "b", 0.0), ("b", "c", 1.0), ("c", "b", 0.5)]


def test_payoff_table_holds_mean_scores_counts_and_intervals_with_a_diagonal_of_one_half():
    table = payoff_table(PAIRINGS, samples=200, seed=1)
    assert table.players == ["a", "b", "c"]
    a, b, c = range(3)
    assert table.mean[a, b] == pytest.approx(2.5 / 4) and table.mean[b, a] == pytest.approx(1.5 / 4)
    assert table.mean[b, c] == pytest.approx(0.75) and table.n[b, c] == table.n[c, b] == 2
    assert table.n[a, b] == 4
    assert np.diag(table.mean).tolist() == [0.5] * 3 and np.diag(table.n).tolist() == [0] * 3
    filled = table.n > 0
    assert (table.lo[filled] <= table.mean[filled]).all() and (table.mean[filled] <= table.hi[filled]).all()
    assert np.isnan(table.mean[a, c]) and table.missing() == [("a", "c")]
    assert table.cell("a", "b").n == 4


def test_a_table_with_a_missing_pair_is_refused_by_the_solver_naming_the_pair():
    table = payoff_table(PAIRINGS, samples=10)
    with pytest.raises(ValueError, match=r"never played each other \(a vs c\)"):
        solve(table)
    unsolved = metagame(PAIRINGS, samples=10)
    assert not unsolved.solved and unsolved.as_dict()["nash"] is None and unsolved.as_dict()["missing"] == [["a", "c"]]


def test_exploitability_of_a_member_is_how_much_its_strongest_opponent_beats_it():
    game = solve(payoff_table([("a", "b", 1.0), ("a", "c", 1.0), ("b", "c", 1.0), ("c", "b", 0.5)], samples=10))
    assert game.mixture == pytest.approx([1.0, 0.0, 0.0])
    assert game.member_exploitability == pytest.approx([0.0, 0.5, 0.5])  # a is unbeaten; a beats b and c every time
    assert game.beaten_most_by == [None, "a", "a"]
    assert game.nash_exploitability == pytest.approx(0.0, abs=1e-9)


def test_a_member_with_no_games_yet_appears_in_the_table_with_its_pairs_missing():
    table = payoff_table([("a", "b", 1.0)], players=["c"], samples=10)
    assert table.players == ["a", "b", "c"] and table.missing() == [("a", "c"), ("b", "c")]


def test_write_metagame_writes_parseable_json_and_a_csv_matrix(tmp_path):
    game = metagame([*PAIRINGS, ("a", "c", 0.0)], samples=50)
    paths = write_metagame(tmp_path, game)
    assert [p.name for p in paths] == ["metagame.json", "payoff.csv"]
    data = json.loads((tmp_path / "metagame.json").read_text())
    assert data["players"] == ["a", "b", "c"] and data["missing"] == []
    assert sum(data["nash"]["mixture"].values()) == pytest.approx(1.0)
    assert set(data["exploitability"]) == {"a", "b", "c"}
    assert data["table"]["n"][0][1] == 4 and data["table"]["mean"][1][1] == 0.5
    rows = list(csv.reader((tmp_path / "payoff.csv").open()))
    assert rows[0] == ["player", "a", "b", "c"] and [r[0] for r in rows[1:]] == ["a", "b", "c"]
    assert float(rows[1][2]) == pytest.approx(0.625) and float(rows[2][2]) == 0.5


def test_a_crossplay_bench_writes_the_metagame_and_draws_its_payoff_table(tmp_path):
    result = CliRunner().invoke(
        app,
        ["bench", "--games", "negotiation", "--models", "scripted:fair,scripted:greedy", "--mode", "crossplay",
         "--episodes", "2", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "metagame.json").read_text())
    assert data["players"] == ["scripted:fair", "scripted:greedy"] and data["table"]["n"][0][1] == 4
    assert (tmp_path / "payoff.csv").read_text().startswith("player,scripted:fair,scripted:greedy\n")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["metagame"]["all"] == data
    html = (tmp_path / "report" / "index.html").read_text()
    assert '<img src="payoff.png"' in html and 'class="metagame"' in html
    assert (tmp_path / "report" / "payoff.png").stat().st_size > 0
    assert "Nash mixture and exploitability" in result.output and "beaten most by" in result.output


def test_the_terminal_table_of_an_unsolved_metagame_names_the_pairs_that_never_met():
    from rich.console import Console

    from dialogym.benchmarks.report import Summary, metagame_table
    from dialogym.benchmarks.runner import BenchConfig

    config = BenchConfig(models=["scripted", "tiny", "smollm2"], mode="crossplay", seat="speaker")
    pairings = [("scripted", "tiny", 1.0), ("scripted", "smollm2", 0.5)]
    summary = Summary(config=config, rows=[], scores=[], metagames={"all": metagame(pairings, samples=10)})
    console = Console(width=200, record=True)
    console.print(metagame_table(summary))
    text = " ".join(console.export_text().split())  # the caption wraps at the table's width
    assert "not solved: these pairs never played each other: smollm2 vs tiny" in text
    assert metagame_table(Summary(config=config.model_copy(update={"mode": "selfplay"}), rows=[], scores=[])) is None


def test_the_payoff_table_orders_checkpoints_by_their_numbers():
    """``it-10`` comes after ``it-9``, not after ``it-1``: a league's table reads in iteration order."""
    pairings = [("it-10", "it-1", 1.0), ("it-2", "it-10", 0.0), ("it-9", "scripted:nash", 0.5), ("it-1", "it-2", 0.5)]
    assert payoff_table(pairings, samples=20).players == ["it-1", "it-2", "it-9", "it-10", "scripted:nash"]


def test_a_restricted_table_is_the_sub_game_of_its_members_and_is_solved_alone():
    # "eq" ties every checkpoint (an equilibrium player); among the checkpoints, it-2 beats the others
    pairings = [("it-2", "it-0", 1.0), ("it-2", "it-1", 1.0), ("it-1", "it-0", 1.0),
                ("eq", "it-0", 0.5), ("eq", "it-1", 0.5), ("eq", "it-2", 0.5)]
    table = payoff_table(pairings, samples=10)
    full = solve(table)
    assert full.mixture[table.players.index("eq")] > 0  # the equilibrium player shares the full game's weight
    league = table.restricted(["it-0", "it-1", "it-2"])
    assert league.players == ["it-0", "it-1", "it-2"] and league.n.tolist() == [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    assert league.cell("it-2", "it-1").value == 1.0 and league.cell("it-0", "it-2").value == 0.0
    assert solve(league).mixture.tolist() == pytest.approx([0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="no member bot"):
        table.restricted(["it-0", "bot"])
