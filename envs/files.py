"""Crash-safe writes: every file and folder dialogym keeps (episodes, results, reports,
checkpoints) is written through here, so a kill or a power loss at any moment leaves the old
version or the new one, never a mix.

- A whole file is written to a temporary file beside it (``.<name>.<random>.tmp``), flushed
  to disk and renamed over it: :func:`atomic_write_bytes`, :func:`atomic_write_text`,
  :func:`atomic_write_json`. It is left readable by all (0644), as results are meant to be
  read and served. The one writer of a file removes the temporaries a killed write left.
- A line store (JSON lines) grows by :func:`append_text`, one write flushed to disk; a crash
  can at worst tear its last line, which :func:`truncate_torn_tail` cuts off.
- A folder cannot be swapped in one rename when the destination exists, so
  :func:`atomic_replace_dir` moves the old folder aside to ``.<name>.old``, renames the new
  one into place and removes the old one; :func:`recover_dir` (called before reading the
  folder) puts the aside copy back if a crash came between the renames.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any


# --------------------------------------------------------------------------- whole files
def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write a whole file so readers see the old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read and served
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any, *, allow_nan: bool = True) -> Path:
    """``data`` as indented JSON and a newline, written atomically; ``allow_nan=False``
    refuses NaN and infinities (which strict JSON readers reject) with ``ValueError``."""
    return atomic_write_text(path, json.dumps(data, indent=1, allow_nan=allow_nan) + "\n")


def remove_stale_temporaries(path: Path) -> None:
    """Delete the ``.<name>.*.tmp`` files an atomic write of ``path`` leaves when it is killed
    before its rename (the one writer of a file calls this before writing it again)."""
    for stale in Path(path).parent.glob(f".{glob.escape(Path(path).name)}.*.tmp"):
        stale.unlink(missing_ok=True)


# --------------------------------------------------------------------------- line stores
def append_text(path: Path, text: str) -> None:
    """Append ``text`` (whole lines) in one write, flushed to disk before returning."""
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def truncate_torn_tail(path: Path) -> None:
    """Cut a JSON-lines file back to its last complete line (what a crashed writer left)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        warnings.warn(f"{path}: cut a torn last line of {len(data) - keep} bytes left by a crash", stacklevel=3)
        handle.truncate(keep)


# --------------------------------------------------------------------------- folders
def atomic_replace_dir(tmp: str | Path, final: str | Path) -> Path:
    """Move the complete folder ``tmp`` (on the same file system) to ``final``, replacing
    any folder there so that a crash at any point, power loss included, leaves one
    complete version."""
    tmp, final = Path(tmp), Path(final)
    _fsync_tree(tmp)
    old = _aside(final)
    if final.exists():
        if old.exists():  # stale: an earlier replace was killed after its second rename
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return final


def recover_dir(final: str | Path) -> Path:
    """Finish or undo an interrupted :func:`atomic_replace_dir`: put the aside copy back if
    the new folder never arrived, drop it if it did. Returns ``final``."""
    final = Path(final)
    old = _aside(final)
    if old.exists():
        if final.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, final)
    return final


def _aside(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Flush every file below ``folder`` (and the folders) to disk, so a rename that
    publishes it cannot outlive a power loss that its contents do not."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        elif path.is_dir():
            _fsync_dir(path)
    _fsync_dir(folder)
