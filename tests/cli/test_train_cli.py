"""`dialogym train`: a config file, flags that override it, and one-line errors."""

import importlib.util
import json

from typer.testing import CliRunner

from dialogym.cli import app
from dialogym.trainers.toy import GAME_ID


def test_config_file_values_are_used_and_flags_override_them(tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "train.yaml"
    config.write_text(f"algo: grpo\nmodel: tiny\nsteps: 1\ngroup_size: 2\ninstances: 2\nmax_new_tokens: 4\nout: {out}\n")
    result = CliRunner().invoke(app, ["train", "reference", "--config", str(config), "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert (out / "checkpoint" / "adapter_config.json").exists()


def test_unknown_config_keys_and_algos_are_one_clear_line(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("stepz: 3\n")
    result = CliRunner().invoke(app, ["train", "reference", "--config", str(config)])
    assert result.exit_code == 2 and "unknown training option(s) ['stepz']" in result.output
    result = CliRunner().invoke(app, ["train", "reference", "--algo", "a2c", "--model", "tiny"])
    assert result.exit_code == 2 and "unknown algo 'a2c'" in result.output


def trained_config(out, algo="grpo"):
    return json.loads((out / "checkpoint" / f"{algo}_config.json").read_text())


TINY = ["--model", "tiny", "--steps", "1", "--group-size", "2", "--instances", "1", "--max-new-tokens", "4"]


def test_every_objective_setting_reaches_the_trainer_from_flags(tmp_path):
    out = tmp_path / "run"
    flags = ["--baseline", "role", "--no-scale-rewards", "--epsilon-low", "0.1", "--epsilon-high", "0.35", "--grad-accum", "2",
             "--epochs", "3", "--temperature", "0.7", "--beta", "0.05", "--loss-type", "dr_grpo", "--lora-rank", "0"]
    result = CliRunner().invoke(app, ["train", GAME_ID, *TINY, *flags, "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = trained_config(out)
    assert config["baseline"] == "role" and config["scale_rewards"] is False
    assert (config["epsilon_low"], config["epsilon_high"]) == (0.1, 0.35)
    assert (config["grad_accum"], config["epochs"], config["temperature"]) == (2, 3, 0.7)
    assert (config["beta"], config["loss_type"], config["lora_rank"]) == (0.05, "dr_grpo", 0)


def test_the_same_settings_from_a_config_file_and_ppo_keeps_its_own_epoch_default(tmp_path):
    out = tmp_path / "run"
    config_file = tmp_path / "train.json"
    config_file.write_text(json.dumps({"algo": "ppo", "baseline": "role", "scale_rewards": False, "epsilon_high": 0.4,
                                       "grad_accum": 2, "temperature": 0.5, "out": str(out)}))
    result = CliRunner().invoke(app, ["train", GAME_ID, *TINY, "--config", str(config_file), "--temperature", "0.9"])
    assert result.exit_code == 0, result.output
    config = trained_config(out, "ppo")
    assert config["baseline"] == "role" and config["scale_rewards"] is False and config["epsilon_high"] == 0.4
    assert config["grad_accum"] == 2 and config["temperature"] == 0.9  # the flag beat the file
    assert config["epochs"] == 2 and (out / "checkpoint" / "value_head.pt").exists()


def test_a_badly_typed_config_value_is_one_line_naming_the_key(tmp_path):
    config_file = tmp_path / "bad.yaml"
    config_file.write_text("grad_accum: many\n")
    result = CliRunner().invoke(app, ["train", GAME_ID, "--config", str(config_file)])
    assert result.exit_code == 2 and "grad_accum" in result.output and "Traceback" not in result.output


def test_train_takes_one_game_and_says_so_in_one_line():
    result = CliRunner().invoke(app, ["train", "all", "--model", "tiny"])
    assert result.exit_code == 2
    assert "train takes one game; 'all' names" in result.output and "unpack" not in result.output


def test_sft_keeps_conversations_above_min_reward(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", GAME_ID, *TINY, "--algo", "sft", "--min-reward", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len((out / "sft.jsonl").read_text().splitlines()) == 2  # every played episode earned >= 0
    assert (out / "checkpoint" / "adapter_config.json").exists()
    result = CliRunner().invoke(app, ["train", GAME_ID, *TINY, "--algo", "sft", "--min-reward", "2", "--out", str(out)])
    assert result.exit_code == 2 and "no conversation earned --min-reward 2.0" in result.output


def test_tensorboard_logs_or_says_in_one_line_what_to_install(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", GAME_ID, *TINY, "--tensorboard", "--out", str(out)])
    if importlib.util.find_spec("tensorboard") is None:
        assert result.exit_code == 2 and "pip install tensorboard" in result.output
    else:
        assert result.exit_code == 0, result.output
        assert list((out / "tensorboard").iterdir())


def test_several_opponents_from_repeated_flags_take_the_instances_in_turn(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "dialogym/Negotiation-v1", "--model", "tiny", "--steps", "1", "--group-size", "2",
                                      "--instances", "2", "--max-new-tokens", "4", "--seat", "bob",
                                      "--opponent", "scripted:fair", "--opponent", "scripted:greedy", "--game-options",
                                      "messages=false", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint" / "adapter_config.json").exists()
    result = CliRunner().invoke(app, ["train", GAME_ID, *TINY, "--algo", "sft", "--opponent", "scripted", "--opponent", "scripted:x"])
    assert result.exit_code == 2 and "--opponent once for dpo/sft" in result.output
