"""Scripted players use only public names of the rules (and of every other module they import).

import-linter sees which modules import which, not which names, so this rule is checked here
on the source of every family's ``players.py``: no ``from ... import _name``, no import of a
private module, no ``module._name``.
"""

import ast
from pathlib import Path

import pytest

import dialogym.envs.games

GAMES = Path(dialogym.envs.games.__file__).parent
PLAYER_MODULES = sorted(GAMES.glob("*/players.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_names_used(source: str) -> list[str]:
    """Every private name ``source`` takes from another module, as ``line: what``."""
    tree = ast.parse(source)
    imported: set[str] = set()
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if any(_private(part) for part in module.split(".")):
                found.append((node.lineno, node.col_offset, f"from {'.' * node.level}{module}"))
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                if _private(alias.name):
                    found.append((node.lineno, node.col_offset, f"{alias.name} from {'.' * node.level}{module}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                imported.add(alias.asname or alias.name.split(".")[0])
                if any(_private(part) for part in alias.name.split(".")):
                    found.append((node.lineno, node.col_offset, f"import {alias.name}"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in imported:
                found.append((node.lineno, node.col_offset, ast.unparse(node)))
    return [f"{line}: {what}" for line, _, what in sorted(found)]


def test_every_game_family_has_a_players_module():
    families = [p for p in GAMES.iterdir() if (p / "__init__.py").exists()]
    assert families and sorted(p / "players.py" for p in families) == PLAYER_MODULES


@pytest.mark.parametrize("path", PLAYER_MODULES, ids=lambda p: p.parent.name)
def test_scripted_players_use_only_public_names(path):
    assert private_names_used(path.read_text(encoding="utf-8")) == [], (
        f"{path.parent.name}/players.py reaches into private names; make them public in the rules"
    )


def test_the_check_finds_private_imports_modules_and_attributes():
    source = (
        "from .rules import LETTERS, _NAME_RE\n"
        "from ._private import helper\n"
        "import numpy._core\n"
        "from . import formal\n"
        "def f(x):\n"
        "    return formal._parse(x), formal.grammar._terms, x._own, formal.__name__\n"
    )
    assert private_names_used(source) == [
        "1: _NAME_RE from .rules",
        "2: from ._private",
        "3: import numpy._core",
        "6: formal._parse",
        "6: formal.grammar._terms",
    ]
