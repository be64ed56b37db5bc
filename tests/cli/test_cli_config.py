"""Options and config-file keys generated from a config class: one default, one help text,
one meaning for a flag and the key of the same name, one line per bad key or value."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Literal, get_args

import pytest
import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

from dialogym.benchmarks.runner import BenchConfig
from dialogym.cli import app
from dialogym.cli_config import Settings, _unwrap, config_command
from dialogym.cli_train import TRAIN_ALIASES, TRAIN_CONFIGS
from dialogym.trainers.config import GRPOConfig, LeagueConfig, PPOConfig

cli = CliRunner()


class Toy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(3, ge=1, description="how many rounds")
    style: Literal["calm", "loud"] = Field("calm", description="how to speak")
    tags: list[str] = Field(default_factory=lambda: ["a", "b"], description="tags, separated by commas")
    shout: bool = Field(False, description="shout every reply")
    level: str | None = Field(None, description="level; unset: the default")


def recording_app(configs: Any, *, fixed: dict[str, Any] | None = None, **options: Any) -> tuple[typer.Typer, list[Any]]:
    """An app whose command ``run`` records the config it built from its settings."""
    built: list[Any] = []
    build = next(iter(configs.values())) if isinstance(configs, dict) else configs

    def run(settings: Settings) -> None:
        built.append(settings.build(build, **(fixed or {})))

    recording = typer.Typer()
    recording.command("run")(config_command(run, configs, noun="toy", **options))
    recording.command("other")(lambda: None)  # a second command keeps "run" a subcommand
    return recording, built


def option(command_app: typer.Typer, command: str, name: str) -> Any:
    group = typer.main.get_command(command_app)
    return next(p for p in group.commands[command].params if p.name == name)


def test_generated_options_carry_the_class_defaults_help_and_ranges():
    toy, _ = recording_app(Toy)
    rounds = option(toy, "run", "rounds")
    assert rounds.default == 3 and "how many rounds" in rounds.help and "x>=1" in rounds.help
    assert option(toy, "run", "tags").default == "a,b"
    assert option(toy, "run", "style").default == "calm"
    shout = option(toy, "run", "shout")
    assert shout.default is False and "--no-shout" in shout.secondary_opts
    help_text = cli.invoke(toy, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "calm|loud" in help_text and "--config" in help_text


@pytest.mark.parametrize(
    ("command", "cls", "exclude"),
    [("bench", BenchConfig, ()), ("train", GRPOConfig, ()), ("train", PPOConfig, ()), ("league", LeagueConfig, ("game",))],
)
def test_every_field_of_a_commands_config_class_is_an_option_with_its_default(command, cls, exclude):
    for name, info in cls.model_fields.items():
        if name in exclude:
            continue
        param = option(app, command, name)
        default = info.get_default(call_default_factory=True)
        if command == "train" and name == "epochs":  # grpo and ppo differ: the help says both
            assert param.default is None and "grpo 1, ppo 2" in param.help
            continue
        expected = ",".join(default) if isinstance(default, list) else default
        assert param.default == expected, name
        assert (info.description or "") in param.help, name


def test_a_command_whose_classes_differ_marks_the_settings_only_one_has():
    assert "ppo only" in option(app, "train", "gamma").help
    assert {"--instances-per-step", "--instances"} <= set(option(app, "train", "instances_per_step").opts)


def sample_value(cls: type[BaseModel], name: str) -> tuple[str, Any] | None:
    """A non-default value of a field, as a flag's text and as a YAML value; None: skip."""
    special = {
        "games": ("reference,negotiation", ["reference", "negotiation"]),
        "models": ("scripted,tiny", ["scripted", "tiny"]),
        "model": ("tiny", "tiny"),
        "sampler": ("uniform", "uniform"),
        "game_options": ("messages=false", ["messages=false"]),
        "seat": None if cls is BenchConfig else ("listener", "listener"),  # bench: a crossplay setting
    }
    if name in special:
        return special[name]
    info = cls.model_fields[name]
    kind, _ = _unwrap(info.annotation)
    default = info.get_default(call_default_factory=True)
    if kind is bool:
        return ("--no-" if default else "--") + name.replace("_", "-"), (not default)
    if getattr(kind, "__origin__", None) is Literal:
        choice = [c for c in get_args(kind) if c != default][-1]
        return choice, choice
    if kind is int:
        return str((default or 2) + 1), (default or 2) + 1
    if kind is float:
        return ("0.5", 0.5) if default != 0.5 else ("0.25", 0.25)
    return "x", "x"


CASES = [
    ("bench", BenchConfig, {}, {}),
    ("grpo", GRPOConfig, {}, {}),
    ("ppo", PPOConfig, {}, {}),
    ("league", LeagueConfig, {"exclude": ("game",)}, {"game": "dialogym/Reference-v0"}),
]


@pytest.mark.parametrize(("label", "cls", "options", "fixed"), CASES, ids=[c[0] for c in CASES])
def test_a_yaml_key_and_the_flag_of_the_same_name_give_the_same_config(tmp_path, label, cls, options, fixed):
    for name in cls.model_fields:
        if name in fixed or (sample := sample_value(cls, name)) is None:
            continue
        text, value = sample
        flag = [text] if text.startswith("--") else ["--" + name.replace("_", "-"), text]
        from_flag_app, from_flag = recording_app(cls, fixed=fixed, **options)
        result = cli.invoke(from_flag_app, ["run", *flag])
        assert result.exit_code == 0, (name, result.output)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({name: value}))
        from_key_app, from_key = recording_app(cls, fixed=fixed, **options)
        result = cli.invoke(from_key_app, ["run", "--config", str(path)])
        assert result.exit_code == 0, (name, result.output)
        assert from_flag[0] == from_key[0], name
        assert from_flag[0] != cls.model_validate(fixed), f"{name}: the sample value is the default"


def test_a_flag_beats_the_file_and_a_setting_given_nowhere_keeps_the_class_default(tmp_path):
    path = tmp_path / "toy.json"
    path.write_text('{"rounds": 7, "style": "loud"}')
    toy, built = recording_app(Toy)
    assert cli.invoke(toy, ["run", "--config-file", str(path), "--rounds", "2"]).exit_code == 0
    assert built[-1] == Toy(rounds=2, style="loud")


def test_older_flag_and_key_names_keep_working(tmp_path):
    train, built = recording_app(TRAIN_CONFIGS, aliases=TRAIN_ALIASES)
    path = tmp_path / "train.yaml"
    path.write_text("instances: 3\n")
    assert cli.invoke(train, ["run", "--instances", "5"]).exit_code == 0
    assert cli.invoke(train, ["run", "--config", str(path)]).exit_code == 0
    assert [c.instances_per_step for c in built] == [5, 3]


@pytest.mark.parametrize(
    ("command", "noun"), [("bench", "bench"), ("play reference", "play"), ("train reference", "training"),
                          ("league reference", "league")]
)
def test_an_unknown_config_key_is_one_line_naming_the_file_the_key_and_the_known_keys(tmp_path, command, noun):
    path = tmp_path / "bad.yaml"
    path.write_text("episodez: 3\n")
    result = cli.invoke(app, [*command.split(), "--config", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and result.output.count("error:") == 1 and "Traceback" not in result.output
    assert f"{path}: unknown {noun} option(s) ['episodez']; known: [" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_a_bad_value_is_one_line_naming_the_key_and_where_it_came_from(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("style: shy\n")
    toy, _ = recording_app(Toy)
    result = cli.invoke(toy, ["run", "--config", str(path)])
    assert result.exit_code == 2 and f"{path}: bad toy setting 'style'" in " ".join(result.output.split())
    result = cli.invoke(app, ["bench", "--episodes", "0", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "command line: bad bench setting 'episodes'" in result.output


def test_a_setting_of_another_algo_is_refused_in_one_line():
    result = cli.invoke(app, ["train", "reference", "--model", "tiny", "--gamma", "0.9"])
    assert result.exit_code == 2 and "'gamma' is a setting of ppo only" in result.output


def test_league_gate_below_zero_still_means_no_gate(monkeypatch):
    import dialogym.trainers.league as league_module

    seen = []

    def fake_league(config, out):
        seen.append(config)
        raise ValueError("stopped before training")

    monkeypatch.setattr(league_module, "League", fake_league)
    for gate in ("-1", "0.5"):
        cli.invoke(app, ["league", "reference", "--model", "tiny", "--gate", gate])
    assert [c.gate for c in seen] == [None, 0.5]


def test_python_dash_m_dialogym_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "dialogym", "games"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "dialogym/Reference-v0" in result.stdout


def test_a_command_may_spell_a_bool_flag_its_own_way_and_the_key_stays_the_field_name(tmp_path):
    toy, built = recording_app(Toy, flags={"shout": "--shout/--whisper", "absent": "--x/--y"})  # absent: skipped
    shout = option(toy, "run", "shout")
    assert (shout.opts, shout.secondary_opts) == (["--shout"], ["--whisper"])
    path = tmp_path / "toy.yaml"
    path.write_text("shout: true\n")
    assert cli.invoke(toy, ["run", "--config", str(path), "--whisper"]).exit_code == 0
    assert cli.invoke(toy, ["run", "--config", str(path)]).exit_code == 0
    assert [c.shout for c in built] == [False, True]
    assert cli.invoke(toy, ["run", "--no-shout"]).exit_code == 2
