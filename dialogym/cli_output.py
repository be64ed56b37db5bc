"""What every ``dialogym`` command prints with: the consoles, and one line per user error."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

# Piped output (CI logs, files) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

#: Errors that mean "the user asked for something wrong": one clear line, exit code 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, ImportError)
#: Paths that cannot be used as given (``--out`` under a file, a folder that is a file, no permission).
PATH_ERRORS: tuple[type[OSError], ...] = (NotADirectoryError, FileExistsError, IsADirectoryError, PermissionError)


def fail(message: str) -> None:
    """Print ``error: <message>`` as one line (whatever the message holds) and exit with 2."""
    from dialogym.agents.human import terminal_text

    # A server's error page or a library's message may span lines, carry escape sequences or
    # rich markup: all are flattened to one plain line.
    line = " ".join(terminal_text(message).split())
    err_console.print(f"[bold red]error:[/bold red] {escape(line)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn bad arguments, specs, configs and paths, and a model server's failure, into one
    line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from dialogym.agents.models import ModelNotAvailable
        from dialogym.agents.openai_http import BackendError
        from dialogym.benchmarks.runner import AgentError

        try:
            return func(*args, **kwargs)
        except PATH_ERRORS as err:
            fail(f"cannot use {err.filename}: {err.strerror}" if err.filename else str(err))
        except (*USER_ERRORS, ModelNotAvailable, BackendError, AgentError) as err:
            text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            fail(str(text))

    return wrapper
