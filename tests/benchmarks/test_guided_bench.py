"""Guided moves in the front ends: ``--guided/--free`` (and the config key ``guided``) on
play, bench and train; a benchmark rates one model both ways and says which is which."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from dialogym.benchmarks.runner import BenchConfig, guided_spec, moves_of, prepare_folder
from dialogym.cli import FLAGS, app
from dialogym.cli_config import Settings, config_command
from dialogym.cli_train import TRAIN_CONFIGS
from dialogym.envs import read_episodes

cli = CliRunner()
REF = "dialogym/Reference-v0"
GUIDED_COMMANDS = ["play", "bench", "train", "league"]


def one_error_line(output: str) -> bool:
    return output.startswith("error:") and output.count("error:") == 1 and "Traceback" not in output


def option(command: str, name: str):
    return next(p for p in typer.main.get_command(app).commands[command].params if p.name == name)


@pytest.mark.parametrize("command", GUIDED_COMMANDS)
def test_guided_moves_are_spelled_guided_or_free_with_free_the_default(command):
    guided = option(command, "guided")
    assert (guided.opts, guided.secondary_opts, guided.default) == (["--guided"], ["--free"], False)


def recording(configs, *, fixed=None):
    """An app whose command ``run`` records the config it built, with the CLI's flags."""
    built = []
    cls = next(iter(configs.values())) if isinstance(configs, dict) else configs

    def run(settings: Settings) -> None:
        built.append(settings.build(cls, **(fixed or {})))

    recorder = typer.Typer()
    recorder.command("run")(config_command(run, configs, noun="toy", flags=FLAGS))
    recorder.command("other")(lambda: None)
    return recorder, built


@pytest.mark.parametrize("configs", [BenchConfig, TRAIN_CONFIGS], ids=["bench", "train"])
def test_the_guided_and_free_flags_and_the_guided_key_set_the_same_setting(tmp_path, configs):
    recorder, built = recording(configs)
    for value in (True, False):
        path = tmp_path / f"{value}.yaml"
        path.write_text(f"guided: {str(value).lower()}\n")
        assert cli.invoke(recorder, ["run", "--guided" if value else "--free"]).exit_code == 0
        assert cli.invoke(recorder, ["run", "--config", str(path)]).exit_code == 0
    assert [c.guided for c in built] == [True, True, False, False]
    assert cli.invoke(recorder, ["run", "--no-guided"]).exit_code == 2  # one spelling: --free


@pytest.mark.parametrize(("command", "noun"), [("bench", "bench"), ("play reference", "play"), ("train reference", "training")])
def test_a_guided_key_that_is_not_true_or_false_is_one_clear_line(tmp_path, command, noun):
    path = tmp_path / "bad.yaml"
    path.write_text("guided: sometimes\n")
    result = cli.invoke(app, [*command.split(), "--model" if command != "bench" else "--models", "tiny",
                              "--config", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and one_error_line(result.output), result.output
    assert f"{path}: bad {noun} setting 'guided'" in " ".join(result.output.split())
    assert "write true or false" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_guided_plays_every_model_guided_and_leaves_scripted_and_human_players_as_they_are():
    config = BenchConfig(models=["tiny", "hf:/m+lora:/a", "smollm2+guided", "scripted:default", "human"], guided=True)
    assert config.models == ["tiny+guided", "hf:/m+lora:/a+guided", "smollm2+guided", "scripted:default", "human"]
    assert BenchConfig(models=["tiny", "scripted"]).models == ["tiny", "scripted"]  # --free: specs as written
    assert guided_spec("tiny+guided") == "tiny+guided" and guided_spec("scripted") == "scripted"


def test_a_bench_config_keeps_its_models_parsed_as_the_specs_they_play_as():
    from dialogym.agents.specs import parse_spec

    config = BenchConfig(models=["tiny", "scripted:default"], guided=True)
    assert config.specs == {"tiny+guided": parse_spec("tiny+guided"), "scripted:default": parse_spec("scripted:default")}
    assert BenchConfig.model_validate_json(config.model_dump_json()).specs == config.specs  # a stored run's too
    assert config.model_copy(update={"models": ["human"]}).specs == {"human": parse_spec("human")}


def test_guided_with_a_model_named_both_ways_is_refused_with_the_way_out():
    with pytest.raises(ValueError, match="'tiny\\+guided' would play twice; name it once, or leave guided off"):
        BenchConfig(models=["tiny", "tiny+guided"], guided=True)


def test_each_model_moves_guided_free_or_as_its_kind_of_player():
    config = BenchConfig(models=["tiny", "tiny+guided", "scripted", "human"])
    assert config.moves() == {"tiny": "free", "tiny+guided": "guided", "scripted": "scripted", "human": "human"}
    assert moves_of("openai:http://h/v1#m?timeout=5+guided") == "guided"


def test_a_guided_run_resumes_as_the_same_run_spelled_with_plus_guided(tmp_path):
    prepare_folder(BenchConfig(games=[REF], models=["tiny"], guided=True), tmp_path)
    again = prepare_folder(BenchConfig(games=[REF], models=["tiny+guided"]), tmp_path)  # no "other settings"
    assert again.models == ["tiny+guided"]
    with pytest.raises(ValueError, match="other settings: models"):
        prepare_folder(BenchConfig(games=[REF], models=["tiny"]), tmp_path)


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory):
    """One bench run that rates the tiny model free and guided."""
    out = tmp_path_factory.mktemp("both")
    result = cli.invoke(app, ["bench", "--games", "reference", "--models", "tiny,tiny+guided", "--episodes", "1",
                              "--max-new-tokens", "16", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return out, result.output


def test_one_run_rates_a_model_free_and_guided_as_two_entries_labelled_by_their_moves(both_ways):
    out, output = both_ways
    summary = json.loads((out / "summary.json").read_text())
    assert summary["moves"] == {"tiny": "free", "tiny+guided": "guided"}
    assert sorted(s["model"] for s in summary["scores"] if s["game"] == "all") == ["tiny", "tiny+guided"]
    board = output[output.index("dialogym bench"):]
    assert "moves" in board and "│ tiny+guided │ guided" in board and "│ tiny        │ free" in board
    html = (out / "report" / "index.html").read_text()
    assert '<td class="name moves">guided</td>' in html and '<td class="name moves">free</td>' in html


def test_guided_turns_carry_their_grammar_and_free_turns_none(both_ways):
    out, _ = both_ways
    episodes = {e.tags["pairing"]: e for e in read_episodes(out / "episodes.jsonl")}
    assert set(episodes) == {"tiny", "tiny+guided"}
    assert all(t.grammar and t.grammar.startswith("start:") for t in episodes["tiny+guided"].turns)
    assert all(t.grammar is None for t in episodes["tiny"].turns)


def test_play_guided_plays_the_model_guided_and_writes_turns_with_their_grammars(tmp_path):
    result = cli.invoke(app, ["play", "reference", "--model", "tiny", "--guided", "--episodes", "1",
                              "--max-new-tokens", "16", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (episode,) = read_episodes(tmp_path / "episodes.jsonl")
    assert set(episode.seats.values()) == {"tiny+guided"}
    assert episode.turns and all(t.grammar for t in episode.turns)
    assert json.loads((tmp_path / "bench.json").read_text())["guided"] is True
