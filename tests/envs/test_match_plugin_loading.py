"""Games from other packages (the ``dialogym.games`` entry-point group) are loaded when the
envs package is imported, so ``gymnasium.make`` finds them right after ``import dialogym``;
a plug-in that fails never breaks the import."""

import subprocess
import sys
import textwrap

PLUGIN = """
from dialogym.envs import register
from dialogym.envs.games.reference import ReferenceGame


class EarlyGame(ReferenceGame):
    pass


def register_all():
    register("outside/Early-v0", EarlyGame)
"""
# Uses the root package, which is still being imported when the envs package loads plug-ins.
ROOT_PLUGIN = """
import dialogym
from dialogym.envs.games.reference import ReferenceGame


class RootGame(ReferenceGame):
    pass


def register_all():
    dialogym.register("outside/Root-v0", RootGame)
"""
CHECK = """
import warnings
warnings.simplefilter("error")  # no warning may escape for plug-ins that load
import gymnasium
import dialogym

assert "outside/Early-v0" in gymnasium.registry, "not registered at import"
env = gymnasium.make("outside/Early-v0", opponents="scripted")
env.reset(seed=0)
assert "outside/Root-v0" in dialogym.registered()
assert "outside/Root-v0" in gymnasium.registry
print("ok")
"""


def install(tmp_path, name, source, entry_point):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    dist = tmp_path / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[dialogym.games]\n{name} = {entry_point}\n")


def run_python(tmp_path, code):
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        capture_output=True, text=True, timeout=120,
    )


def test_entry_point_games_are_in_gymnasium_right_after_import(tmp_path):
    install(tmp_path, "early_games", PLUGIN, "early_games:register_all")
    install(tmp_path, "root_games", ROOT_PLUGIN, "root_games:register_all")
    result = run_python(tmp_path, CHECK)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_broken_plugin_warns_but_never_breaks_the_import(tmp_path):
    install(tmp_path, "broken_games", "raise RuntimeError('boom')\n", "broken_games:register_all")
    result = run_python(tmp_path, "import dialogym\nprint(len(dialogym.registered()) > 0)")
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr
    assert "could not load games from 'broken_games:register_all'" in result.stderr
