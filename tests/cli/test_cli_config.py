"""Options and config-file keys generated from a config class: one default, one help text,
one meaning for a flag and the key of the same name, one line per bad key or value."""

from __future__ import annotations

import re
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
from dialogym.cli_league import LEAGUE_OPTIONS
from dialogym.cli_train import TRAIN_ALIASES, TRAIN_CONFIGS
from dialogym.trainers.config import LEAGUE_DECIDES, GRPOConfig, LeagueConfig, PPOConfig

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
    assert option(toy, "run", "tags").default == ["a", "b"]
    assert option(toy, "run", "style").default == "calm"
    shout = option(toy, "run", "shout")
    assert shout.default is False and "--no-shout" in shout.secondary_opts
    help_text = cli.invoke(toy, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "calm|loud" in help_text and "--config" in help_text


def test_a_list_option_takes_commas_and_repeats_and_a_repeated_flag_keeps_every_value():
    toy, built = recording_app(Toy)
    for args in (["--tags", "x,y", "--tags", "z"], ["--tags", "x", "--tags", "y,z"], ["--tags", "x, y,z"]):
        result = cli.invoke(toy, ["run", *args])
        assert result.exit_code == 0, result.output
        assert built[-1].tags == ["x", "y", "z"]
    assert cli.invoke(toy, ["run"]).exit_code == 0 and built[-1].tags == ["a", "b"]


@pytest.mark.parametrize(
    ("command", "cls", "exclude"),
    [("bench", BenchConfig, ()), ("train", GRPOConfig, ()), ("train", PPOConfig, ()), ("league", LeagueConfig, ("game", "learner"))],
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
        expected = [str(v) for v in default] if isinstance(default, list) else default
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
        "train_game_options": ("hands=1", ["hands=1"]),
        "seat": None if cls is BenchConfig else ("listener", "listener"),  # bench: a crossplay setting
        "learner": None,  # the learner's settings are options of their own names
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
    ("league", LeagueConfig, {k: v for k, v in LEAGUE_OPTIONS.items() if k != "noun"}, {"game": "dialogym/Reference-v0"}),
]


#: settings valid only beside another one: (its flags, its config keys)
NEEDS = {"rollback": (["--gate", "0.5"], {"gate": 0.5})}


@pytest.mark.parametrize(("label", "cls", "options", "fixed"), CASES, ids=[c[0] for c in CASES])
def test_a_yaml_key_and_the_flag_of_the_same_name_give_the_same_config(tmp_path, label, cls, options, fixed):
    for name in cls.model_fields:
        if name in fixed or (sample := sample_value(cls, name)) is None:
            continue
        text, value = sample
        flag = [text] if text.startswith("--") else ["--" + name.replace("_", "-"), text]
        flags, keys = NEEDS.get(name, ([], {}))  # a setting that is valid only beside another
        from_flag_app, from_flag = recording_app(cls, fixed=fixed, **options)
        result = cli.invoke(from_flag_app, ["run", *flag, *flags])
        assert result.exit_code == 0, (name, result.output)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({name: value, **keys}))
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


@pytest.fixture
def leagues_built(monkeypatch):
    """The configs `dialogym league` builds, stopped before any training."""
    import dialogym.trainers.league as league_module

    seen = []

    def fake_league(config, out):
        seen.append(config)
        raise ValueError("stopped before training")

    monkeypatch.setattr(league_module, "League", fake_league)
    return seen


def test_league_gate_below_zero_still_means_no_gate(leagues_built):
    for gate in ("-1", "0.5"):
        cli.invoke(app, ["league", "reference", "--model", "tiny", "--gate", gate])
    assert [c.gate for c in leagues_built] == [None, 0.5]


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


# -- the league's learner: a config nested in the league's --------------------------------
#: the learner's settings a league uses, each an option of `dialogym league`
LEAGUE_LEARNER = [name for name in PPOConfig.model_fields if name not in LEAGUE_DECIDES]


def test_league_help_lists_each_learner_option_once_with_the_leagues_defaults():
    help_text = cli.invoke(app, ["league", "--help"], env={"COLUMNS": "300"}).output
    params = typer.main.get_command(app).commands["league"].params
    for name in LEAGUE_LEARNER:
        flag = "--" + name.replace("_", "-")
        assert len(re.findall(rf"(?<![\w-]){flag}(?![\w-])", help_text)) == 1, name
        assert [p.name for p in params if flag in p.opts] == [name]
    for name in LEAGUE_DECIDES:  # the league decides these itself: no option
        assert all(p.name != name for p in params)
    assert (option(app, "league", "lr").default, option(app, "league", "max_new_tokens").default) == (1e-3, 32)
    assert option(app, "league", "epochs").default is None and "grpo 1, ppo 2" in option(app, "league", "epochs").help
    assert "ppo only" in option(app, "league", "gamma").help


def test_a_learner_flag_its_key_and_its_key_under_learner_give_the_same_league_config(tmp_path):
    options = {k: v for k, v in LEAGUE_OPTIONS.items() if k != "noun"}
    for name in LEAGUE_LEARNER:
        # the league's own default baseline is role, so the value that differs from it is group
        text, value = ("group", "group") if name == "baseline" else sample_value(PPOConfig, name)
        flag = [text] if text.startswith("--") else ["--" + name.replace("_", "-"), text]
        path = tmp_path / f"{name}.yaml"
        built = []
        for mapping in (None, {name: value}, {"learner": {name: value}}):  # the flag, its key, its key under learner
            league, configs = recording_app(LeagueConfig, fixed={"game": "dialogym/Reference-v0"}, **options)
            if mapping is not None:
                path.write_text(yaml.safe_dump({"algo": "ppo", **mapping}))
            args = ["--algo", "ppo", *flag] if mapping is None else ["--config", str(path)]
            result = cli.invoke(league, ["run", *args])
            assert result.exit_code == 0, (name, result.output)
            built += configs
        assert built[0] == built[1] == built[2], name
        assert getattr(built[0].learner, name) != getattr(LeagueConfig(game="g", algo="ppo").learner, name), name


def test_the_nested_learner_config_round_trips_through_yaml_and_the_command_line(tmp_path, leagues_built):
    league = ["league", "reference", "--model", "tiny", "--out", str(tmp_path / "run")]
    nested, flat, dumped = (tmp_path / f"{name}.yaml" for name in ("nested", "flat", "dumped"))
    nested.write_text("algo: ppo\nlearner:\n  beta: 0.1\n  epochs: 3\n  gamma: 0.9\n")
    flat.write_text("algo: ppo\nbeta: 0.1\nepochs: 3\ngamma: 0.9\n")  # keys named as the flags are
    cli.invoke(app, [*league, "--algo", "ppo", "--beta", "0.1", "--epochs", "3", "--gamma", "0.9"])
    cli.invoke(app, [*league, "--config", str(nested)])
    cli.invoke(app, [*league, "--config", str(flat)])
    dumped.write_text(yaml.safe_dump(leagues_built[0].model_dump(exclude={"game": True, "learner": set(LEAGUE_DECIDES)})))
    cli.invoke(app, [*league, "--config", str(dumped)])
    assert len(leagues_built) == 4 and all(config == leagues_built[0] for config in leagues_built)
    learner = leagues_built[0].learner
    assert isinstance(learner, PPOConfig) and (learner.beta, learner.epochs, learner.gamma) == (0.1, 3, 0.9)
    assert (learner.lr, learner.max_new_tokens, learner.baseline) == (1e-3, 32, "role")  # the league's defaults
    assert LeagueConfig.model_validate_json(leagues_built[0].model_dump_json()) == leagues_built[0]


def test_a_flag_beats_the_nested_key_and_the_learner_defaults_are_the_leagues(tmp_path, leagues_built):
    path = tmp_path / "league.yaml"
    path.write_text("learner:\n  beta: 0.1\n  max_new_tokens: 8\n")
    cli.invoke(app, ["league", "reference", "--model", "tiny", "--config", str(path), "--beta", "0.2"])
    cli.invoke(app, ["league", "reference", "--model", "tiny"])
    given, default = (config.learner for config in leagues_built)
    assert (given.beta, given.max_new_tokens, given.lr) == (0.2, 8, 1e-3)
    assert default == GRPOConfig(lr=1e-3, max_new_tokens=32, baseline="role")


@pytest.mark.parametrize(("text", "error"), [
    ("lr: 0.5\nlearner: {lr: 0.4}\n", "'lr' is given twice, at the top and under learner:; keep one"),
    ("learner: {episodes: 3}\n", "unknown league option(s) ['learner.episodes']"),
    ("learner: {seat: speaker}\n", "unknown league option(s) ['learner.seat']"),
    ("learner: 3\n", "learner is a mapping of settings"),
    ("gamma: 0.9\n", "'gamma' is a setting of ppo only, not of this run"),
    ("lora_rank: 0\n", "bad league setting 'learner.lora_rank': the league's learner is a LoRA adapter"),
])
def test_a_bad_learner_key_in_a_league_config_is_one_line_naming_it(tmp_path, leagues_built, text, error):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = cli.invoke(app, ["league", "reference", "--model", "tiny", "--config", str(path)])
    assert result.exit_code == 2 and result.output.count("error:") == 1 and not leagues_built
    assert error in " ".join(result.output.split())

