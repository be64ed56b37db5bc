"""What a run says: the score table, the summary, the terminal leaderboard and the HTML report."""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from dialogym.agents.human import CONTROL_CHARS
from dialogym.envs import Episode
from dialogym.envs.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from dialogym.envs.text import SURROGATE_RANGE

from .metagame import MetaGame, PayoffTable, metagame, payoff_table, write_metagame
from .ratings import Pairing, Rating, fit_ratings, openskill_ratings
from .runner import BenchConfig, moves_of
from .scores import (
    BOOTSTRAP_SAMPLES,
    Estimate,
    GameScores,
    aggregate,
    match_score,
    quality_definition,
    score_rows,
)

TEMPLATES = Path(__file__).parent / "templates"
ALL = "all"


@dataclass
class Summary:
    """Everything the reports show, computed once from the episodes of a run."""

    config: BenchConfig
    rows: list[dict[str, Any]]
    scores: list[GameScores]
    #: game id (or "all") -> (a, b, score of a) from cross-play episodes
    matches: dict[str, list[Pairing]] = field(default_factory=dict)
    #: game id (or "all") -> model -> Bradley-Terry rating (the headline rating)
    ratings: dict[str, dict[str, Rating]] = field(default_factory=dict)
    #: game id (or "all") -> model -> OpenSkill rating, from the ``openskill`` library
    openskill: dict[str, dict[str, Rating]] = field(default_factory=dict)
    #: game id (or "all") -> model -> opponent -> mean score with its bootstrap interval
    win_rates: dict[str, dict[str, dict[str, Estimate]]] = field(default_factory=dict)
    #: game id (or "all") -> the empirical meta-game of its matches: payoff table, Nash mixture, exploitability
    metagames: dict[str, MetaGame] = field(default_factory=dict)

    def score(self, game: str, model: str) -> GameScores | None:
        return next((s for s in self.scores if s.game == game and s.model == model), None)

    def leaderboard(self) -> list[GameScores]:
        """Cross-game scores, best overall first."""
        rows = [s for s in self.scores if s.game == ALL]
        return sorted(rows, key=lambda s: (-_num(s.overall.value), s.model))

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(),
            "moves": self.config.moves(),
            "scores": [s.as_dict() for s in self.scores],
            "ratings": _ratings_dict(self.ratings),
            "openskill": _ratings_dict(self.openskill),
            "win_rates": {
                game: {a: {b: e.as_dict() for b, e in row.items()} for a, row in rates.items()}
                for game, rates in self.win_rates.items()
            },
            "metagame": {game: m.as_dict() for game, m in self.metagames.items()},
        }


def _ratings_dict(ratings: dict[str, dict[str, Rating]]) -> dict[str, Any]:
    return {
        game: {m: {"mu": r.mu, "lo": r.lo, "hi": r.hi, "matches": r.matches} for m, r in by_model.items()}
        for game, by_model in ratings.items()
    }


def _num(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def cross_matches(episodes: list[Episode]) -> dict[str, list[Pairing]]:
    """Pairwise outcomes of episodes with exactly two models, per game and over all games."""
    matches: dict[str, list[Pairing]] = {}
    for episode in episodes:
        models = list(dict.fromkeys(episode.seats.values()))
        if len(models) != 2:
            continue
        a, b = sorted(models)
        match = (a, b, match_score(episode, a, b))
        matches.setdefault(episode.game, []).append(match)
        matches.setdefault(ALL, []).append(match)
    return matches


def summarise(config: BenchConfig, episodes: list[Episode], *, samples: int = BOOTSTRAP_SAMPLES) -> Summary:
    rows = score_rows(episodes)
    matches = dict(sorted(cross_matches(episodes).items()))
    # One bootstrap per pair gives both the win rates and the meta-game's payoff table.
    metagames = {game: metagame(items, samples=samples, seed=config.seed) for game, items in matches.items()}
    return Summary(
        config=config,
        rows=rows,
        scores=aggregate(rows, samples=samples, seed=config.seed),
        matches=matches,
        ratings={game: fit_ratings(items) for game, items in matches.items()},
        openskill={game: openskill_ratings(items, seed=config.seed) for game, items in matches.items()},
        win_rates={game: table_rates(m.table) for game, m in metagames.items()},
        metagames=metagames,
    )


def win_rates(matches: list[Pairing], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict[str, dict[str, Estimate]]:
    """model -> opponent -> the model's mean score against it (ties half), 95% bootstrap interval, n."""
    return table_rates(payoff_table(matches, samples=samples, seed=seed))


def table_rates(table: PayoffTable) -> dict[str, dict[str, Estimate]]:
    """The cells of ``table`` as :func:`win_rates` gives them: only pairs that played, no diagonal."""
    names = table.players
    return {a: {b: table.cell(a, b) for j, b in enumerate(names) if table.n[i, j]} for i, a in enumerate(names)}


# --------------------------------------------------------------------------- files
def write_tables(summary: Summary, out: Path) -> list[Path]:
    """``scores.csv`` (and ``scores.parquet`` when pyarrow is there) and ``summary.json``, and in
    cross-play the meta-game over all games (``metagame.json``, ``payoff.csv``), atomically."""
    import pandas as pd

    frame = pd.DataFrame(summary.rows)
    written = [atomic_write_text(out / "scores.csv", frame.to_csv(index=False))]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        written.append(atomic_write_bytes(out / "scores.parquet", frame.to_parquet(index=False)))
    written.append(atomic_write_json(out / "summary.json", _no_nan(summary.as_dict()), allow_nan=False))
    if ALL in summary.metagames:
        written += write_metagame(out, summary.metagames[ALL])
    return written


def _no_nan(value: Any) -> Any:
    """NaN (an aggregate over no episode) becomes JSON null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


# --------------------------------------------------------------------------- terminal
def leaderboard_table(summary: Summary) -> Table:
    """Models ranked by overall score across games, with intervals and episode counts."""
    ratings, openskill = summary.ratings.get(ALL, {}), summary.openskill.get(ALL, {})
    table = Table(title=f"dialogym bench {summary.config.name}: {summary.config.mode}, {len(summary.config.games)} games")
    columns = ["#", "model", "moves", "overall", "% played", "quality", "episodes (played)"]
    if ratings:
        columns[6:6] = ["rating (BT, Elo scale)", "OpenSkill mu"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "moves") else "right")
    for rank, s in enumerate(summary.leaderboard(), start=1):
        cells = [
            str(rank), s.model, moves_of(s.model), str(s.overall), str(s.played), str(s.quality),
            f"{s.episodes} ({s.played_episodes})",
        ]
        if ratings:
            os_rating = openskill.get(s.model)
            os_text = f"{os_rating.mu:.1f} [{os_rating.lo:.1f}, {os_rating.hi:.1f}]" if os_rating else "-"
            cells[6:6] = [str(ratings[s.model]) if s.model in ratings else "-", os_text]
        table.add_row(*cells)
    table.caption = (
        "value [95% bootstrap interval]; overall = % played x quality / 100; "
        "moves: guided (decoded under each seat's move grammar) or free"
    )
    if ratings:
        table.caption += "; ratings [95% interval: Laplace approximation (BT), mu +- 1.96 sigma (OpenSkill)]"
    return table


def games_table(summary: Summary) -> Table:
    """Per game and model: % played, quality, overall (and rating in cross-play)."""
    table = Table(title="per game")
    columns = ["game", "model", "episodes (played)", "% played", "quality", "overall"]
    if summary.ratings:
        columns.append("rating")
    for column in columns:
        table.add_column(column, justify="left" if column in ("game", "model") else "right")
    for s in summary.scores:
        if s.game == ALL:
            continue
        cells = [s.game, s.model, f"{s.episodes} ({s.played_episodes})", str(s.played), str(s.quality), str(s.overall)]
        if summary.ratings:
            rating = summary.ratings.get(s.game, {}).get(s.model)
            cells.append(str(rating) if rating else "-")
        table.add_row(*cells)
    return table


#: What the meta-game's numbers mean, under its terminal table and its table in the report.
#: (No square brackets: rich would read them as markup.)
METAGAME_CAPTION = (
    "M = row's mean score against column - 0.5 (win 1, tie 0.5, loss 0); Nash: the most even maximin mixture "
    "of M (a linear program); a member's exploitability: max over j of M(j, member), how much its strongest "
    "opponent (beaten most by) beats it, 0 if nobody does, 0.5 if beaten in every game"
)


def metagame_rows(game: MetaGame) -> list[tuple[str, float, float, str]]:
    """``(member, Nash weight, exploitability, beaten most by or "-")``, highest weight first, of a solved meta-game."""
    if game.mixture is None or game.member_exploitability is None or game.beaten_most_by is None:
        return []
    rows = [
        (name, float(game.mixture[i]), float(game.member_exploitability[i]), game.beaten_most_by[i] or "-")
        for i, name in enumerate(game.table.players)
    ]
    return sorted(rows, key=lambda row: (-round(row[1], 6), row[2], row[0]))


def metagame_table(summary: Summary) -> Table | None:
    """The Nash mixture and each member's exploitability over all games' cross-play matches;
    None outside cross-play or with fewer than two players."""
    game = summary.metagames.get(ALL)
    if summary.config.mode != "crossplay" or game is None or len(game.table.players) < 2:
        return None
    return nash_table(game, "meta-game across games: Nash mixture and exploitability")


def nash_table(game: MetaGame, title: str) -> Table:
    """The meta-game's Nash mixture and each member's exploitability, highest weight first; an
    unsolved one lists its members and, in the caption, the pairs that never met."""
    table = Table(title=title)
    for column in ("member", "Nash weight", "exploitability", "beaten most by"):
        table.add_column(column, justify="right" if column in ("Nash weight", "exploitability") else "left")
    if not game.solved:
        for name in game.table.players:
            table.add_row(name, "-", "-", "-")
        pairs = ", ".join(f"{a} vs {b}" for a, b in game.table.missing())
        table.caption = f"not solved: these pairs never played each other: {pairs}"
        return table
    for name, weight, exploit, by in metagame_rows(game):
        table.add_row(name, f"{weight:.3f}", f"{exploit:.3f}", by)
    table.caption = f"{METAGAME_CAPTION}; value {game.value:+.3f}, Nash exploitability {game.nash_exploitability:.3f}"
    return table


def summary_table(episodes: list[Episode], title: str) -> Table:
    """Per game and agent-in-seat: episodes, % played, mean reward and the game's metrics."""
    groups: dict[tuple[str, str], list[Episode]] = {}
    for episode in episodes:
        key = (episode.game, " vs ".join(f"{seat}={agent}" for seat, agent in episode.seats.items()))
        groups.setdefault(key, []).append(episode)
    table = Table(title=title)
    for column in ("game", "seats", "episodes", "% played", "mean reward per seat", "metrics (played episodes)"):
        table.add_column(column)
    for (game, seats), items in sorted(groups.items()):
        played = [e for e in items if e.played]
        rewards = {seat: statistics.fmean(e.rewards[seat] for e in items) for seat in items[0].rewards}
        metric_names = sorted({name for e in played for name in e.metrics})
        metrics = {name: statistics.fmean(e.metrics[name] for e in played if name in e.metrics) for name in metric_names}
        table.add_row(
            game,
            seats,
            str(len(items)),
            f"{100 * len(played) / len(items):.0f}",
            " ".join(f"{s}={v:+.2f}" for s, v in rewards.items()),
            " ".join(f"{n}={v:.2f}" for n, v in metrics.items()) or "-",
        )
    return table


# --------------------------------------------------------------------------- plots
def _png(fig: Any) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def plot_scores(summary: Summary) -> bytes:
    """Grouped horizontal bars: overall score per game and model, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    games = [*sorted({s.game for s in summary.scores if s.game != ALL}), ALL]
    models = summary.config.models
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.35 * len(games) * max(1, len(models))))
    height = 0.8 / max(1, len(models))
    for k, model in enumerate(models):
        values, errors = [], [[], []]
        for game in games:
            s = summary.score(game, model)
            v = s.overall.value if s else math.nan
            values.append(0.0 if math.isnan(v) else v)
            lo = s.overall.lo if s and not math.isnan(s.overall.lo) else v
            hi = s.overall.hi if s and not math.isnan(s.overall.hi) else v
            errors[0].append(max(0.0, values[-1] - (0.0 if math.isnan(lo) else lo)))
            errors[1].append(max(0.0, (0.0 if math.isnan(hi) else hi) - values[-1]))
        y = np.arange(len(games)) + k * height
        ax.barh(y, values, height=height, xerr=errors, capsize=2, label=model)
    ax.set_yticks(np.arange(len(games)) + 0.4 - height / 2)
    ax.set_yticklabels([g.split("/")[-1] for g in games])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("overall = % played x quality / 100 (95% bootstrap interval)")
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


#: x-axis labels of the rating chart's panels; they say how each interval is made.
BT_AXIS = "Bradley-Terry rating, Elo scale (95% interval, Laplace approximation)"
OPENSKILL_AXIS = "OpenSkill μ, openskill's Bradley-Terry model (μ ± 1.96σ)"


def plot_ratings(ratings: dict[str, Rating], openskill: dict[str, Rating] | None = None) -> bytes:
    """The Bradley-Terry ratings with intervals and, given ``openskill``, a second panel with those."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name, _ in sorted(ratings.items(), key=lambda kv: kv[1].mu)]
    panels = [(ratings, BT_AXIS, 1000.0)] + ([(openskill, OPENSKILL_AXIS, 25.0)] if openskill else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 0.8 + 0.45 * len(names)), squeeze=False)
    for ax, (by_name, label, centre) in zip(axes[0], panels, strict=True):
        for y, name in enumerate(names):
            r = by_name[name]
            ax.errorbar(r.mu, y, xerr=[[r.mu - r.lo], [r.hi - r.mu]], fmt="o", capsize=4, color="tab:blue")
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names)
        ax.axvline(centre, color="grey", linewidth=0.5)
        ax.set_xlabel(label)
    return _png(fig)


def _cell(e: Estimate) -> str:
    return f"{e.value:.2f}\n[{e.lo:.2f}, {e.hi:.2f}]\nn={e.n}"


def _heat_map(rate: Any, text: list[list[str]], names: list[str], rows: list[str], *, ylabel: str, title: str) -> bytes:
    """A square heat map of ``rate`` (0 red to 1 green) with ``text`` in each cell; ``rows``
    label the rows of the players ``names``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.5 + 1.4 * len(names), 1.0 + 1.0 * len(names)))
    _draw_heat_map(ax, rate, text, names, rows, ylabel=ylabel, title=title)
    return _png(fig)


def _draw_heat_map(ax: Any, rate: Any, text: list[list[str]], names: list[str], rows: list[str], *, ylabel: str,
                   title: str) -> None:
    image = ax.imshow(rate, vmin=0, vmax=1, cmap="RdYlGn")
    for i, line in enumerate(text):
        for j, cell in enumerate(line):
            ax.text(j, i, cell, ha="center", va="center", fontsize=8 if len(names) < 8 else 6)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), rows)
    ax.set_xlabel("opponent")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)


def plot_win_matrix(rates: dict[str, dict[str, Estimate]]) -> bytes:
    """Heat map of each row's mean score against each column, with the bootstrap intervals
    and counts of :func:`win_rates` (the numbers of ``summary.json``, not a second bootstrap)."""
    import numpy as np

    names = list(rates)
    rate = np.array([[rates[a][b].value if b in rates[a] else np.nan for b in names] for a in names])
    text = [[_cell(rates[a][b]) if b in rates[a] else "" for b in names] for a in names]
    return _heat_map(
        rate, text, names, names, ylabel="model (row's win rate, ties half)", title="win rate [95% bootstrap interval], n matches"
    )


def plot_payoff(game: MetaGame) -> bytes:
    """Heat map of the meta-game's payoff table (each cell's mean score, interval and count; the
    diagonal 0.5 by definition) with each member's Nash weight under its name when solved."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(game.table.players)
    fig, ax = plt.subplots(figsize=(1.5 + 1.4 * k, 1.0 + 1.0 * k))
    draw_payoff(ax, game)
    return _png(fig)


def draw_payoff(ax: Any, game: MetaGame) -> None:
    """:func:`plot_payoff`'s heat map drawn on the matplotlib axes ``ax`` (a panel of a larger figure)."""
    table = game.table
    names = table.players
    text = [
        ["0.5" if a == b else _cell(table.cell(a, b)) if table.n[i, j] else "no games" for j, b in enumerate(names)]
        for i, a in enumerate(names)
    ]
    rows = names if game.mixture is None else [f"{name}\nNash {w:.2f}" for name, w in zip(names, game.mixture, strict=True)]
    _draw_heat_map(
        ax, table.mean, text, names, rows, ylabel="member (row's mean score, ties half)",
        title="mean score [95% bootstrap interval], n games; Nash weight under each member",
    )


# --------------------------------------------------------------------------- HTML
def write_report(summary: Summary, episodes: list[Episode], folder: Path) -> Path:
    """The static report: ``folder/index.html`` with its PNG plots; opens offline."""
    import jinja2

    folder.mkdir(parents=True, exist_ok=True)
    plots: list[dict[str, str]] = []

    def add_plot(name: str, title: str, data: bytes) -> None:
        atomic_write_bytes(folder / f"{name}.png", data)
        plots.append({"file": f"{name}.png", "title": title})

    add_plot("scores", "Overall score per game", plot_scores(summary))
    if summary.ratings.get(ALL):
        add_plot("ratings", "Ratings across games (cross-play)", plot_ratings(summary.ratings[ALL], summary.openskill[ALL]))
    if ALL in summary.metagames:
        add_plot("payoff", "Payoff table of the meta-game across games (cross-play)", plot_payoff(summary.metagames[ALL]))

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        # Every {{ value }} the page writes (transcripts, replies, errors, agent names, ...)
        # shows its control characters visibly instead of holding them raw.
        finalize=_visible_value,
    )
    # Plain JSON text (autoescaped like any model text), unlike ``tojson``'s \u0027 escapes.
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    games = sorted({e.game for e in episodes})
    html = env.get_template("report.html.j2").render(
        config=summary.config,
        leaderboard=summary.leaderboard(),
        ratings=summary.ratings,
        openskill=summary.openskill,
        win_rates=summary.win_rates,
        metagame=summary.metagames.get(ALL),
        metagame_rows=metagame_rows,
        metagame_caption=METAGAME_CAPTION,
        per_game=[s for s in summary.scores if s.game != ALL],
        plots=plots,
        games=games,
        episodes_by_game={g: [e for e in episodes if e.game == g] for g in games},
        metric_names={g: sorted({m for s in summary.scores if s.game == g for m in s.metrics}) for g in games},
        quality_lines={g: quality_definition(g, summary.config.mode == "selfplay") for g in games},
        all_name=ALL,
        moves_of=moves_of,
        fmt=_html_estimate,
    )
    index = atomic_write_text(folder / "index.html", html)
    for path in (index, *(folder / p["file"] for p in plots)):
        path.chmod(0o644)  # a report is for reading, by a web server too
    return index


#: What a page or a terminal showing it must not hold raw: C0 controls but tab and newline
#: (ESC starts the escape sequences a terminal acts on when the file is ``cat``-ed, BEL, NUL,
#: CR, ...), DEL, C1 controls (0x9b is a one-byte CSI), the bidirectional embeddings, overrides
#: and isolates that show text in another order than it reads (U+202A-U+202E,
#: U+2066-U+2069), and unpaired surrogates, which no UTF-8 file can hold. The same set as the
#: terminal's :func:`dialogym.agents.human.terminal_text`, plus the surrogates.
_INVISIBLE_RE = re.compile(f"[{CONTROL_CHARS}{SURROGATE_RANGE}]")


def _shown(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # its control picture: "\x1b" shows as "␛"
    return "\u2421" if code == 0x7F else f"<U+{code:04X}>"


def visible_text(text: str) -> str:
    """``text`` with every character of :data:`_INVISIBLE_RE` made visible: a C0 control as
    its Unicode control picture (``"\\x1b"`` as ``"␛"``, ``"\\x07"`` as ``"␇"``), DEL as
    ``"␡"``, a C1 control, bidi override or isolate, or an unpaired surrogate as
    ``"<U+202E>"``. Tab and newline stay. Unlike the terminal's
    :func:`~dialogym.agents.human.terminal_text`, which drops escape sequences whole, a report
    is a record: the reader sees that a model wrote ``"␛]0;PWNED␇"``, and nothing runs."""
    return _INVISIBLE_RE.sub(lambda match: _shown(match.group()), text)


def _visible_value(value: Any) -> Any:
    """Jinja's ``finalize``: what a ``{{ value }}`` writes, made visible (before autoescaping)."""
    import markupsafe

    if isinstance(value, markupsafe.Markup):  # our own markup: only its text may change
        return markupsafe.Markup(_INVISIBLE_RE.sub(lambda match: str(markupsafe.escape(_shown(match.group()))), value))
    if value is None or isinstance(value, int | float):
        return value
    return visible_text(str(value))


def _html_estimate(estimate: Estimate, digits: int = 1) -> Any:
    """``value [lo, hi] n=...`` as HTML; only numbers go in, so the markup is safe."""
    import markupsafe

    if math.isnan(estimate.value):
        return markupsafe.Markup(f'- <span class="n">n={estimate.n}</span>')
    interval = "" if math.isnan(estimate.lo) else f" <span class=\"ci\">[{estimate.lo:.{digits}f}, {estimate.hi:.{digits}f}]</span>"
    return markupsafe.Markup(f'{estimate.value:.{digits}f}{interval} <span class="n">n={estimate.n}</span>')
