"""What every ``dialogym`` command prints with: the consoles, and one line per user error."""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

# Piped output (CI logs, files) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

#: Errors that mean "the user asked for something wrong": one clear line, exit code 2. An
#: ``OSError`` is a path that cannot be used as given (``--out`` under a file or where nothing
#: can be made, no permission, a full disk): the line names the path and the reason.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, OSError, ImportError)
#: The note :func:`dialogym.agents.specs.load_agent` puts on an error raised while it loads a
#: model, followed by the spec: the line then says which model a library's message is about.
LOADING_NOTE = "while loading model "


def fail(message: str) -> None:
    """Print ``error: <message>`` as one line (whatever the message holds) and exit with 2."""
    from dialogym.agents.human import terminal_text

    # A server's error page or a library's message may span lines, carry escape sequences or
    # rich markup: all are flattened to one plain line.
    line = " ".join(terminal_text(message).split())
    err_console.print(f"[bold red]error:[/bold red] {escape(line)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def os_error_text(err: OSError) -> str:
    """An ``OSError`` as "cannot use PATH: reason" (not ``[Errno 2] ...: 'PATH'``), or its own
    message where it has no errno (one of ours, e.g. "cannot load model ...")."""
    if err.errno is None or not err.strerror:
        return str(err)
    if err.filename is not None and err.filename2 is not None:
        return f"cannot use {err.filename} or {err.filename2}: {err.strerror}"
    if err.filename is not None:
        return f"cannot use {err.filename}: {err.strerror}"
    return err.strerror


def error_text(err: BaseException) -> str:
    """The one line a user error becomes: its message, an ``OSError``'s path and reason, and
    the model being loaded when a library's message (tokenizer, PEFT, JSON) names none."""
    if isinstance(err, OSError):
        text = os_error_text(err)
    elif isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    else:
        text = str(err) or type(err).__name__
    for note in getattr(err, "__notes__", None) or ():
        if isinstance(note, str) and note.startswith(LOADING_NOTE) and "cannot load model" not in text:
            return f"cannot load model {note.removeprefix(LOADING_NOTE)}: {text}"
    return text


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
        except BrokenPipeError:  # output piped into `head`: typer's main ends quietly
            raise
        except (*USER_ERRORS, ModelNotAvailable, BackendError, AgentError) as err:
            fail(error_text(err))

    return wrapper


# --------------------------------------------------------------------------- option values
#: Most episodes one setting may ask of a run (bench, play and demo plan every episode before
#: they play, the trainers allocate each step's): past it a typo would only fill memory.
MAX_EPISODES = 1_000_000


def too_many_episodes(count: int, what: str = "episodes per run") -> str | None:
    """Why ``count`` episodes are refused, or None when they are not."""
    if count > MAX_EPISODES:
        return f"at most {MAX_EPISODES:,} {what}, got {count:,}"
    return None


def not_finite(value: Any) -> str | None:
    """Why ``value`` (a float, or text a float parses from) is no usable number, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    shown = value if isinstance(value, str) else repr(value)
    if math.isnan(number):
        return f"{shown} is not a number"
    if math.isinf(number):
        return f"{shown} is not a finite number"
    return None


def finite_float(value: Any) -> float:
    """Parser of float options: a number, never nan or inf (which compare false with every
    bound, so a range check would call nan "not greater than or equal to 0")."""
    reason = not_finite(value)
    if reason:
        raise ValueError(reason)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


def out_folder(value: Any) -> Path:
    """Parser of ``--out``: a folder name; an empty one would mean the current folder."""
    if isinstance(value, Path):
        return value
    text = str(value)
    if not text.strip():
        raise ValueError(f"{text!r} names no folder (it would write into the current one); give a folder, or --out . for the current one")
    return Path(text)


# --------------------------------------------------------------------------- usage errors
def _click_errors() -> Any:
    """The module of the click exceptions typer raises (its own copy of click since typer 0.23)."""
    return sys.modules[typer.BadParameter.__module__]


def usage_text(err: Exception) -> str:
    """A click usage error (bad option value, missing argument, unknown option or command) as
    the text of one line: ``--split: 'validation' is not one of 'train', 'test', 'any'``."""
    text = err.format_message()
    message = str(getattr(err, "message", ""))
    if isinstance(err, _click_errors().BadParameter) and message and text.endswith(message):
        # "Invalid value for '--split': Value error, 'x' is not ..." -> "--split: 'x' is not ..."
        hint = text[: -len(message)].removeprefix("Invalid value").removeprefix(" for ").rstrip(": ").replace("'", "")
        message = message.removeprefix("Value error, ")  # typer's pydantic coercion prefixes it
        text = f"{hint}: {message}" if hint else message
    return text.strip().removesuffix(".")


@contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """Click's usage errors as one ``error:`` line and exit code 2 (not rich's boxed usage
    text); no arguments at all still show the help."""
    errors = _click_errors()
    try:
        yield
    except getattr(errors, "NoArgsIsHelpError", ()):  # click before 8.2 shows the help without raising
        raise
    except errors.ClickException as err:
        fail(usage_text(err) if isinstance(err, errors.UsageError) else err.format_message())


class OneLineGroup(TyperGroup):
    """The ``dialogym`` group: parsing its command line, and each command's, fails with one line."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with one_line_usage_errors():
            return super().invoke(ctx)
