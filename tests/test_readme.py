"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
RUNNABLE = [b for b in BLOCKS if any(k in b for k in ("agent_iter", "gymnasium.make", "RolloutEngine"))]


def test_readme_has_the_examples():
    assert len(RUNNABLE) == 3
    pettingzoo_example = next(b for b in RUNNABLE if "agent_iter" in b)
    assert len(pettingzoo_example.strip().splitlines()) <= 20


@pytest.mark.parametrize("block", RUNNABLE, ids=["pettingzoo", "gymnasium", "rollout"])
def test_readme_example_runs(block, capsys):
    exec(compile(block, "README.md", "exec"), {})
