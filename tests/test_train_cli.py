"""`dialogym train`: a config file, flags that override it, and one-line errors."""

from typer.testing import CliRunner

from dialogym.cli import app


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
