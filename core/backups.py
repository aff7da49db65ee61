"""The catalogue's safety net: a check that it is really there, rotating online backups, restore.

A workspace whose catalogue vanished or was emptied must never be silently replaced by a new
empty one: `films/` still holds the crops, and every decision lives only in the catalogue.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

from .errors import ReelfaceError
from .io import atomic_write

FOLDER = "backups"
KEEP = 5  # newest backups kept; older ones are removed after each new one
EVERY_S = 3600.0  # a command that opens the workspace backs up when the newest is older
HEADER = b"SQLite format 3\x00"
MISSING, EMPTY = "is missing", "is empty (0 bytes)"


class CatalogueLost(ReelfaceError, RuntimeError):
    """The workspace's catalogue is missing, empty or not a database; the message says why."""


def folder(root: Path) -> Path:
    return root / FOLDER


def listing(root: Path) -> list[Path]:
    """Backups of the workspace at `root`, newest first."""
    found = folder(root).glob("catalogue-*.sqlite")
    return sorted(found, key=lambda p: p.name, reverse=True)


def problem(path: Path) -> str | None:
    """Why `path` is not a usable catalogue (missing, empty, not SQLite), or None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(HEADER))
    except FileNotFoundError:
        return MISSING
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if not head:
        return EMPTY
    if head != HEADER:
        return "is not an SQLite database (overwritten?)"
    return None


def check(root: Path, path: Path, work: bool = True) -> None:
    """Raise CatalogueLost naming the file and the way out when the catalogue is not usable.

    Without `work` (no films extracted, no backups) a missing or empty file has nothing to lose.
    """
    why = problem(path)
    if why is None or (not work and why in (MISSING, EMPTY)):
        return
    newest = listing(root)
    way_out = (
        f"`reelface restore` puts back the newest backup ({newest[0].name}, "
        f"{len(newest)} in {folder(root)})"
        if newest
        else f"restore it from your own backup of {path}; there is none in {folder(root)}"
    )
    raise CatalogueLost(
        f"catalogue {path} {why}, but this workspace has a config and films: nothing was "
        f"changed; {way_out}"
    )


def backup(root: Path, path: Path) -> Path:
    """Copy the live catalogue with SQLite's online backup (consistent under writers), rotate."""
    target = folder(root) / f"catalogue-{time.strftime('%Y%m%d-%H%M%S')}.sqlite"
    atomic_write(target, lambda tmp: _copy_online(path, tmp))
    for old in listing(root)[KEEP:]:
        old.unlink(missing_ok=True)
    return target


def _copy_online(path: Path, tmp: Path) -> None:
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    copy = sqlite3.connect(tmp)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()


def backup_if_due(root: Path, path: Path, every_s: float = EVERY_S) -> Path | None:
    """A new backup when the newest is older than `every_s` (best effort: never blocks work)."""
    newest = listing(root)
    if newest and time.time() - newest[0].stat().st_mtime < every_s:
        return None
    try:
        return backup(root, path)
    except (OSError, sqlite3.Error):
        return None  # a read-only or full workspace still works; the next command tries again


def restore(root: Path, path: Path, source: Path | None = None) -> tuple[Path, Path | None]:
    """Put a backup (default: the newest) in place; the broken catalogue is kept beside it."""
    backups = listing(root)
    chosen = source or (backups[0] if backups else None)
    if chosen is None or problem(chosen) is not None:
        raise CatalogueLost(f"no usable backup in {folder(root)}: restore {path} by hand")
    kept = None
    if path.exists():
        kept = path.with_name(f"{path.stem}.broken-{time.strftime('%Y%m%d-%H%M%S')}.sqlite")
        os.replace(path, kept)
    for suffix in ("-wal", "-shm"):  # kept with it: left here, SQLite would replay them
        side = Path(f"{path}{suffix}")
        if side.exists():
            os.replace(side, Path(f"{kept or path}{suffix}.old"))
    atomic_write(path, lambda tmp: shutil.copyfile(chosen, tmp))
    return chosen, kept
