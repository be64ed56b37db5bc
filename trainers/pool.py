"""The checkpoint pool of a league: past versions of an agent, with ratings and results.

Layout of a pool folder::

    pool.json            the index (entries and their metadata), replaced atomically
    matches.jsonl        one evaluation result per line: {"a", "b", "score", "game", "iteration",
                         "seat", "seed", "outcome"} (a's seat, the instance's seed, a's win/loss/tie)
    checkpoints/<name>/  a LoRA adapter or full weights (absent for external entries)

The index is the source of truth. Adding a checkpoint copies its files into a hidden
temporary folder, renames it into place, then replaces the index; a crash at any point
leaves the pool as it was before, or with the new entry complete. Opening a pool removes
leftovers of an interrupted add (temporary folders and folders the index does not name).

A league on several processes has one writer, rank 0; the other ranks open the pool with
``read_only=True`` (nothing created, cleaned or written) and :meth:`~CheckpointPool.reload`
the index once rank 0 has committed an iteration.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from dialogym.benchmarks.ratings import fit_ratings
from dialogym.envs.files import append_text, atomic_replace_dir, atomic_write_text, truncate_torn_tail


class PoolEntry(BaseModel):
    name: str
    kind: Literal["lora", "full", "external"]
    #: model spec that loads this entry (e.g. "hf:/base+lora:/pool/checkpoints/it-3")
    spec: str
    parent: str | None = None
    step: int = 0
    iteration: int = 0
    games: list[str] = Field(default_factory=list)
    created_at: float = 0.0
    rating: float | None = None
    rating_lo: float | None = None
    rating_hi: float | None = None
    matches: int = 0
    #: mean score against each pool member it met (1 win, 0.5 tie, 0 loss), refit with the ratings
    win_rates: dict[str, float] = Field(default_factory=dict)


class MatchResult(BaseModel):
    a: str
    b: str
    #: a's score: 1 win, 0.5 tie, 0 loss
    score: float
    game: str = ""
    iteration: int = 0
    #: the seat a played (None in results recorded before seats were)
    seat: str | None = None
    #: the seed of the instance: the matches of one instance, a in each seat, share it
    seed: int | None = None

    @computed_field  # written with the result, so a reader of matches.jsonl need not know the scale
    @property
    def outcome(self) -> Literal["win", "loss", "tie"]:
        """a's outcome: a score above 0.5 wins, below loses, 0.5 ties."""
        return "win" if self.score > 0.5 else "loss" if self.score < 0.5 else "tie"


class PoolIndex(BaseModel):
    entries: list[PoolEntry] = Field(default_factory=list)


class CheckpointPool:
    """The pool in the folder ``root`` (created if missing). ``read_only=True`` opens a view
    that neither creates nor cleans the folder and refuses every write: what the ranks other
    than rank 0 of a multi-process league hold."""

    def __init__(self, root: str | Path, *, read_only: bool = False) -> None:
        self.root = Path(root)
        self.dir = self.root / "checkpoints"
        self.index_path = self.root / "pool.json"
        self.matches_path = self.root / "matches.jsonl"
        self.read_only = read_only
        self.reload()
        if not read_only:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._recover()

    def reload(self) -> None:
        """Read the index again (a read-only view, after the writer committed)."""
        self._index = PoolIndex.model_validate_json(self.index_path.read_text()) if self.index_path.exists() else PoolIndex()

    # -- reading ---------------------------------------------------------------------
    @property
    def entries(self) -> list[PoolEntry]:
        return list(self._index.entries)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self._index.entries]

    def __len__(self) -> int:
        return len(self._index.entries)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def get(self, name: str) -> PoolEntry:
        for entry in self._index.entries:
            if entry.name == name:
                return entry
        raise KeyError(f"no checkpoint {name!r} in the pool at {self.root}; it has {self.names}")

    def latest(self) -> PoolEntry:
        if not self._index.entries:
            raise LookupError(f"the pool at {self.root} is empty")
        return self._index.entries[-1]

    def path_of(self, name: str) -> Path:
        return self.dir / name

    # -- writing ---------------------------------------------------------------------
    def add(
        self,
        name: str,
        *,
        source: str | Path | None = None,
        kind: Literal["lora", "full", "external"] = "lora",
        spec: str | None = None,
        base_spec: str | None = None,
        **metadata: object,
    ) -> PoolEntry:
        """Add a checkpoint, copying the folder ``source`` (not for external entries).

        ``spec`` defaults to ``"<base_spec>+lora:<path>"`` for LoRA adapters and
        ``"hf:<path>"`` for full weights.
        """
        self._check_writable(f"add {name!r}")
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"a checkpoint name must be a plain folder name, got {name!r}")
        if name in self:
            raise ValueError(f"the pool already has a checkpoint named {name!r}")
        final = self.path_of(name)
        if kind != "external":
            if source is None or not Path(source).is_dir():
                raise FileNotFoundError(f"checkpoint source folder {source!r} does not exist")
            tmp = self.dir / f".tmp-{name}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp)
            atomic_replace_dir(tmp, final)
            if spec is None:
                if kind == "lora":
                    if base_spec is None:
                        raise ValueError("a LoRA checkpoint needs base_spec, the model spec of its base model")
                    spec = f"{base_spec}+lora:{final}"
                else:
                    spec = f"hf:{final}"
        elif spec is None:
            raise ValueError("an external entry needs a model spec")
        entry = PoolEntry(name=name, kind=kind, spec=spec, created_at=time.time(), **metadata)
        self._index.entries.append(entry)
        self._save()
        return entry

    def record(self, results: Iterable[MatchResult]) -> None:
        """Append evaluation results (one fsync'd write); a torn last line left by a crash
        is cut off first, so the new results do not glue onto it."""
        self._check_writable("record results")
        lines = "".join(r.model_dump_json() + "\n" for r in results)
        if not lines:
            return
        truncate_torn_tail(self.matches_path)
        append_text(self.matches_path, lines)

    def results(self) -> list[MatchResult]:
        if not self.matches_path.exists():
            return []
        out = []
        for line in self.matches_path.read_text().splitlines():
            try:
                out.append(MatchResult.model_validate_json(line))
            except ValueError:
                continue  # a torn last line of a crash
        return [r for r in out if r.a in self and r.b in self]

    def update_ratings(self) -> None:
        """Fit Bradley-Terry ratings and win rates to every recorded result and store them in
        the index; entries without results are left unrated."""
        results = self.results()
        ratings = fit_ratings([(r.a, r.b, r.score) for r in results]) if results else {}
        scores = _scores_by_pair(results)
        for entry in self._index.entries:
            rating = ratings.get(entry.name)
            entry.rating, entry.rating_lo, entry.rating_hi = (rating.mu, rating.lo, rating.hi) if rating else (None, None, None)
            met = {b: s for (a, b), s in scores.items() if a == entry.name}
            entry.matches = sum(len(s) for s in met.values())
            entry.win_rates = {b: sum(s) / len(s) for b, s in met.items()}
        self._save()

    def win_rate(self, a: str, b: str) -> float | None:
        """a's mean score against b over recorded results, or None if they never met."""
        scores = _scores_by_pair(self.results()).get((a, b))
        return sum(scores) / len(scores) if scores else None

    def prune(self, *, keep_last: int | None = None, keep_best: int | None = None, keep: Sequence[str] = ()) -> list[str]:
        """Remove checkpoints except the newest ``keep_last``, the ``keep_best`` highest rated
        and the named ones. Returns the removed names."""
        entries = self._index.entries
        kept = set(keep)
        if keep_last:
            kept |= {e.name for e in entries[-keep_last:]}
        if keep_best:
            rated = sorted((e for e in entries if e.rating is not None), key=lambda e: e.rating or 0.0, reverse=True)
            kept |= {e.name for e in rated[:keep_best]}
        removed = [e.name for e in entries if e.name not in kept]
        self._index.entries = [e for e in entries if e.name in kept]
        self._save()
        for name in removed:
            shutil.rmtree(self.path_of(name), ignore_errors=True)
        return removed

    def rollback(self, after_iteration: int) -> None:
        """Forget entries and results of iterations after ``after_iteration`` (a resumed
        league redoes the iteration a crash interrupted)."""
        keep = [e for e in self._index.entries if e.iteration <= after_iteration]
        dropped = [e.name for e in self._index.entries if e not in keep]
        self._index.entries = keep
        self._save()
        for name in dropped:
            shutil.rmtree(self.path_of(name), ignore_errors=True)
        if self.matches_path.exists():
            kept = [r for r in self.results() if r.iteration <= after_iteration]
            atomic_write_text(self.matches_path, "".join(r.model_dump_json() + "\n" for r in kept))
        self.update_ratings()  # ratings as they were after ``after_iteration``

    def export(self, name: str, dest: str | Path) -> Path:
        """Copy one checkpoint's folder and metadata to ``dest``."""
        entry = self.get(name)
        dest = Path(dest)
        if entry.kind != "external":
            shutil.copytree(self.path_of(name), dest, dirs_exist_ok=True)
        else:
            dest.mkdir(parents=True, exist_ok=True)
        atomic_write_text(dest / "dialogym_checkpoint.json", entry.model_dump_json(indent=1))
        return dest

    # -- internals -------------------------------------------------------------------
    def _check_writable(self, what: str) -> None:
        if self.read_only:
            raise PermissionError(f"cannot {what}: the pool at {self.root} is open read-only (a league rank other than 0); "
                                  "only rank 0 writes the pool")

    def _save(self) -> None:
        self._check_writable("change the index")
        atomic_write_text(self.index_path, self._index.model_dump_json(indent=1))

    def _recover(self) -> None:
        known = {e.name for e in self._index.entries}
        for path in self.dir.iterdir():
            if path.name.startswith(".tmp-") or (path.is_dir() and path.name not in known):
                shutil.rmtree(path, ignore_errors=True)


def _scores_by_pair(results: Sequence[MatchResult]) -> dict[tuple[str, str], list[float]]:
    """(a, b) -> a's scores against b, counting each result from both sides."""
    scores: dict[tuple[str, str], list[float]] = {}
    for r in results:
        scores.setdefault((r.a, r.b), []).append(r.score)
        scores.setdefault((r.b, r.a), []).append(1.0 - r.score)
    return scores
