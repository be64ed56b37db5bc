"""The Python examples of the README and the docs run as written.

The README keeps one example (PettingZoo); the Gymnasium and rollout-engine examples live in
docs/playing.md, the game-writing tutorial in docs/games/writing.md.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def python_blocks(path: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / path).read_text(), re.DOTALL)


README_BLOCKS = python_blocks("README.md")
PLAYING_BLOCKS = python_blocks("docs/playing.md")
WRITING_BLOCKS = python_blocks("docs/games/writing.md")

RUNNABLE = [
    (path, b)
    for path, blocks in (("README.md", README_BLOCKS), ("docs/playing.md", PLAYING_BLOCKS))
    for b in blocks
    if any(k in b for k in ("agent_iter", "gymnasium.make", "RolloutEngine"))
]
GAME_EXAMPLES = [b for b in WRITING_BLOCKS if "dialogym.register(" in b]


def test_readme_has_the_examples():
    assert len(RUNNABLE) == 3
    pettingzoo_example = next(b for path, b in RUNNABLE if "agent_iter" in b)
    assert len(pettingzoo_example.strip().splitlines()) <= 20
    assert len(GAME_EXAMPLES) == 1


def test_readme_keeps_its_one_example_and_the_docs_the_others():
    assert [path for path, b in RUNNABLE if "agent_iter" in b] == ["README.md"]
    assert [path for path, b in RUNNABLE if "agent_iter" not in b] == ["docs/playing.md"] * 2


@pytest.mark.parametrize("path,block", RUNNABLE, ids=["pettingzoo", "gymnasium", "rollout"])
def test_readme_example_runs(path, block, capsys):
    exec(compile(block, path, "exec"), {})


def test_readme_game_example_registers_and_plays_as_an_outside_script(tmp_path):
    # A fresh process, outside the repository: the example registers a game, which must not
    # leak into this process's registry (other tests iterate every registered game).
    result = subprocess.run(
        [sys.executable, "-c", GAME_EXAMPLES[0]], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "completed {'teller': 1.0, 'guesser': 1.0}"
