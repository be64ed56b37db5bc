"""The ``dialogym`` command line: the typer app and its commands.

All CLI code lives in this top package (rooms never import it): ``bench``/``play``/``demo``
in :mod:`dialogym.cli_bench`, ``train`` in :mod:`dialogym.cli_train`, ``league`` in
:mod:`dialogym.cli_league`. Their settings' options and config-file keys are generated from
each command's config class (:mod:`dialogym.cli_config`).
"""

from __future__ import annotations

import typer
from rich.table import Table

from dialogym.benchmarks.runner import BenchConfig
from dialogym.cli_bench import PLAY_DEFAULTS, PLAY_SETTINGS, bench_command, demo_command, play_command
from dialogym.cli_config import config_command
from dialogym.cli_league import LEAGUE_OPTIONS, league_command
from dialogym.cli_output import OneLineGroup, console, fail, user_errors
from dialogym.cli_train import TRAIN_ALIASES, TRAIN_CONFIGS, train_command
from dialogym.trainers.config import LeagueConfig

__all__ = ["app", "console", "fail", "main", "user_errors"]

app = typer.Typer(
    name="dialogym",
    cls=OneLineGroup,  # a bad option value, a missing argument, an unknown option: one `error:` line
    help="Multi-agent dialogue games for language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("games")
def games_command() -> None:
    """List the registered games with their seats and levels."""
    from dialogym.envs import registered, spec

    table = Table(title="dialogym games")
    for column in ("id", "seats", "levels", "scripted players"):
        table.add_column(column)
    for game_id in registered():
        s = spec(game_id)
        table.add_row(game_id, ", ".join(s.game_cls.roles), ", ".join(s.game_cls.levels), ", ".join(s.players) or "-")
    console.print(table)


@app.command("serve")
@user_errors
def serve_command(
    model: str = typer.Option("smollm2", help="model spec to serve"),
    host: str = typer.Option("127.0.0.1", help="address to bind (loopback by default)"),
    port: int = typer.Option(8000, min=1, max=65535),
    max_batch: int = typer.Option(32, min=1, help="most requests answered in one batched call"),
    max_messages: int = typer.Option(256, min=1, help="most messages in one request (413 past it)"),
    max_prompt_chars: int = typer.Option(32_000, min=1, help="most characters of all messages together (413)"),
    max_context_tokens: int = typer.Option(
        0, min=0, help="prompt tokens + max_tokens must fit this (413); 0: the model's context length"),
    max_stop: int = typer.Option(4, min=0, help="most stop strings in one request (422)"),
    max_stop_chars: int = typer.Option(64, min=1, help="longest stop string (422)"),
    max_body_bytes: int = typer.Option(1024 * 1024, min=1024, help="largest request body in bytes (413)"),
) -> None:
    """Serve a model over an OpenAI-compatible /v1/chat/completions API."""
    from dialogym.agents.server import serve
    from dialogym.agents.specs import load_agent, parse_spec

    spec = parse_spec(model)  # a bad spec, then a busy port: each one line, before the model loads
    check_listen(host, port)
    serve(load_agent(spec), host=host, port=port, max_batch=max_batch, max_messages=max_messages,
          max_prompt_chars=max_prompt_chars, max_context_tokens=max_context_tokens or None, max_stop=max_stop,
          max_stop_chars=max_stop_chars, max_body_bytes=max_body_bytes)


@app.command("env-serve")
@user_errors
def env_serve_command(
    games: str = typer.Argument(..., help="game id(s) to serve, comma-separated ('all', 'latest' and short names work)"),
    seat: str = typer.Option(None, help="the seat clients play (default: each game's first seat)"),
    opponents: str = typer.Option("scripted", help="model spec playing every other seat, server-side"),
    host: str = typer.Option("127.0.0.1", help="address to bind (loopback by default)"),
    port: int = typer.Option(8000, min=1, max=65535),
    max_sessions: int = typer.Option(256, min=1, help="most concurrent WebSocket sessions"),
    max_episodes: int = typer.Option(4096, min=1, help="most episodes kept for HTTP clients (the oldest dropped)"),
) -> None:
    """Serve games as an OpenEnv environment server (openenv-core's own; see docs/reach.md)."""
    from dialogym.agents.specs import parse_spec
    from dialogym.envs import resolve_ids

    ids = resolve_ids(games)  # an unknown game, a bad spec, a busy port: one line each, before a model loads
    parse_spec(opponents)
    check_listen(host, port)
    from dialogym.adapters.openenv.server import serve

    serve(ids, host=host, port=port, seat=seat, opponents=opponents, max_sessions=max_sessions,
          max_episodes=max_episodes)


def check_listen(host: str, port: int) -> None:
    """Refuse (one line) a ``host:port`` the server could not listen on: bind a socket to each
    address it resolves to, as the server will, and close it again."""
    import errno
    import socket

    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ValueError(f"cannot listen on {where}: unknown host ({err.strerror}); give an address such as 127.0.0.1") from None
    for family, kind, proto, _, address in addresses:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:  # an address family this machine lacks (IPv6 off): the server skips it too
            continue
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server: a closed port's TIME_WAIT is no clash
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as err:
                reasons = {
                    errno.EADDRINUSE: "address already in use; pick another --port",
                    errno.EACCES: "permission denied (ports below 1024 need privileges); pick another --port",
                    errno.EADDRNOTAVAIL: "no network interface here has that address; pick another --host",
                }
                reason = reasons.get(err.errno or 0, f"{err.strerror or err}")
                raise ValueError(f"cannot listen on {where}: {reason}") from None


#: Flags spelled otherwise than ``--x/--no-x``, in every command whose config has the field:
#: guided moves are the opposite of free ones, not the absence of something.
FLAGS = {"guided": "--guided/--free"}

app.command("play")(
    config_command(play_command, BenchConfig, noun="play", include=PLAY_SETTINGS, defaults=PLAY_DEFAULTS, flags=FLAGS)
)
app.command("bench")(config_command(bench_command, BenchConfig, noun="bench", flags=FLAGS))
app.command("demo")(user_errors(demo_command))
app.command("train")(config_command(train_command, TRAIN_CONFIGS, noun="training", aliases=TRAIN_ALIASES, flags=FLAGS))
app.command("league")(config_command(league_command, LeagueConfig, flags=FLAGS, **LEAGUE_OPTIONS))


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
