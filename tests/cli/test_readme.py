"""The README's Python examples run as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
RUNNABLE = [b for b in BLOCKS if any(k in b for k in ("agent_iter", "gymnasium.make", "RolloutEngine"))]
GAME_EXAMPLES = [b for b in BLOCKS if "dialogym.register(" in b]


def test_readme_has_the_examples():
    assert len(RUNNABLE) == 3
    pettingzoo_example = next(b for b in RUNNABLE if "agent_iter" in b)
    assert len(pettingzoo_example.strip().splitlines()) <= 20
    assert len(GAME_EXAMPLES) == 1


@pytest.mark.parametrize("block", RUNNABLE, ids=["pettingzoo", "gymnasium", "rollout"])
def test_readme_example_runs(block, capsys):
    exec(compile(block, "README.md", "exec"), {})


def test_readme_game_example_registers_and_plays_as_an_outside_script(tmp_path):
    # A fresh process, outside the repository: the example registers a game, which must not
    # leak into this process's registry (other tests iterate every registered game).
    result = subprocess.run(
        [sys.executable, "-c", GAME_EXAMPLES[0]], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "completed {'teller': 1.0, 'guesser': 1.0}"
