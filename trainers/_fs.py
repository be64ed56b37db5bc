"""Crash-safe replacement of a checkpoint folder.

A folder cannot be swapped in one ``rename`` when the destination exists, so a checkpoint
is replaced in three steps: the old folder is renamed aside to ``.<name>.old``, the new one
renamed into place, the old one removed. A crash leaves either the new folder, or only the
aside copy, which :func:`recover_dir` (called before reading a checkpoint) puts back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


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
