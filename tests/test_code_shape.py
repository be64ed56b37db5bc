"""No function or method of dialogym is longer than 80 lines (tests aside): past that, a
reader cannot hold it in one view, and it is split into helpers whose names say what each
part does. Counted from the ``def`` line to the last line of the body, nested functions
included in their parent's count."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("envs", "agents", "adapters", "benchmarks", "trainers", "dialogym")
MAX_LINES = 80


def long_functions(path: Path, root: Path = ROOT) -> list[str]:
    """``path:line name (n lines)`` (``path`` relative to ``root``) of every function in
    ``path`` longer than ``MAX_LINES``."""
    found: list[str] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                lines = child.end_lineno - child.lineno + 1
                if lines > MAX_LINES:
                    found.append(f"{path.relative_to(root)}:{child.lineno} {name} ({lines} lines)")
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return found


def test_no_function_outside_the_tests_is_longer_than_80_lines():
    files = sorted(p for room in ROOMS for p in (ROOT / room).rglob("*.py"))
    assert len(files) > 50  # the rooms were found
    too_long = [item for path in files for item in long_functions(path)]
    assert not too_long, f"split these into helpers of at most {MAX_LINES} lines:\n" + "\n".join(too_long)


def test_the_length_check_names_a_long_method_with_its_class(tmp_path):
    body = "\n".join(f"        x = {i}" for i in range(MAX_LINES))
    source = tmp_path / "sample.py"
    source.write_text(f"class Game:\n    def long(self):\n{body}\n\n    def short(self):\n        pass\n")
    assert long_functions(source, tmp_path) == [f"sample.py:2 Game.long ({MAX_LINES + 1} lines)"]
