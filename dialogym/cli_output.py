"""What every ``dialogym`` command prints with: the consoles, and one line per user error."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

# Piped output (CI logs, files) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

#: Errors that mean "the user asked for something wrong": one clear line, exit code 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, ImportError)


def fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/bold red] {message}", markup=True, highlight=False)
    raise typer.Exit(2)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn bad arguments, specs and configs into one line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from dialogym.agents.models import ModelNotAvailable

        try:
            return func(*args, **kwargs)
        except (*USER_ERRORS, ModelNotAvailable) as err:
            text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            fail(str(text))

    return wrapper
