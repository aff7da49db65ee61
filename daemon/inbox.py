"""The inbox: find films dropped in it, wait until each copy is complete, claim or reject it.

A file is claimed when its size and mtime have not changed for `stable_seconds`, or for
`close_settle_seconds` after a close-after-write event. Claiming moves it (a rename on the same
filesystem) into `workspace/films/<slug>/` and queues its jobs; an unreadable film moves to
`inbox/failed/` with a `<name>.reason.txt` beside it; anything else is left alone.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reelface.io import NAME_MAX, atomic_write
from reelface.pipeline import decode
from reelface.workspace import slugify

VIDEO_SUFFIXES = {
    ".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
    ".wmv", ".flv", ".vob", ".ogv", ".3gp", ".mxf",
}  # fmt: skip
FAILED = "failed"
REASON_SUFFIX = ".reason.txt"


@dataclass
class Seen:
    """What we last saw of a candidate file, and since when it has not changed."""

    size: int
    mtime_ns: int
    since: float
    closed_at: float | None = None


@dataclass
class Claimed:
    """A film moved into the workspace: where it is now, its content hash and its slug."""

    path: Path
    source: str
    content_hash: str
    slug: str


@dataclass
class Inbox:
    """Watches one folder; `tick` claims what is ready, `on_claim` queues its jobs."""

    root: Path
    films: Path
    stable_seconds: float
    close_settle_seconds: float
    scan_seconds: float
    on_claim: Callable[[Claimed], None]
    is_known: Callable[[str], str | None]  # content hash → where the film already is, or None
    log: logging.Logger
    seen: dict[Path, Seen] = field(default_factory=dict)
    noted: dict[Path, tuple[int, int]] = field(default_factory=dict)
    events: set[Path] = field(default_factory=set)
    closed: set[Path] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_scan: float = 0.0
    observer: object | None = None

    @property
    def failed_dir(self) -> Path:
        return self.root / FAILED

    # -- watching --------------------------------------------------------------------------------

    def start(self) -> None:
        """Watch with inotify (watchdog) where possible; periodic rescans catch the rest."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer

            inbox = self

            class Handler(FileSystemEventHandler):
                def on_any_event(self, event) -> None:
                    inbox._event(event)

            observer = Observer()
            observer.schedule(Handler(), str(self.root), recursive=True)
            observer.daemon = True
            observer.start()
            self.observer = observer
        except Exception as error:  # inotify limits, odd filesystems: polling still works
            self.log.warning("inbox %s: watching failed (%s); rescanning every %.0f s",
                             self.root, error, self.scan_seconds)  # fmt: skip
        self.log.info("watching %s", self.root)

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None

    def _event(self, event) -> None:
        with self.lock:
            for attr in ("src_path", "dest_path"):
                value = getattr(event, attr, "")
                if value:
                    path = Path(os.fsdecode(value))
                    self.events.add(path)
                    if event.event_type == "closed" and attr == "src_path":
                        self.closed.add(path)

    # -- finding candidates ----------------------------------------------------------------------

    def _inside(self, path: Path) -> bool:
        """In the inbox, not in failed/, and reached without following a symlink out of it."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        if not rel.parts or rel.parts[0] == FAILED:
            return False
        real = os.path.realpath(path.parent)
        return real == str(self.root) or real.startswith(str(self.root) + os.sep)

    def _candidate(self, path: Path) -> bool:
        """A regular, visible video file (by name) inside the inbox; others get a log note once."""
        if path.name.startswith(".") or not self._inside(path):
            return False  # hidden: partial downloads and rsync temp files
        try:
            st = path.lstat()
        except OSError:
            return False
        if path.is_symlink():
            self._note(path, st, "a symbolic link: never followed, left alone")
            return False
        if not path.is_file():
            return False
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            # Reason notes are ours; .toml files are per-film settings (config.film_settings).
            if not path.name.endswith(REASON_SUFFIX) and path.suffix.lower() != ".toml":
                self._note(path, st, "not a video file (by its name): left alone")
            return False
        return True

    def _note(self, path: Path, st: os.stat_result, message: str) -> None:
        key = (st.st_size, st.st_mtime_ns)
        if self.noted.get(path) != key:
            self.noted[path] = key
            self.log.info("inbox: %s is %s", path.relative_to(self.root), message)

    def scan(self) -> list[Path]:
        """Every candidate in the inbox tree; symlinked folders are not entered."""
        found = []
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            here = Path(folder)
            if here == self.root:
                dirs[:] = [d for d in dirs if d != FAILED]
            for sub in list(dirs):
                if (here / sub).is_symlink():
                    dirs.remove(sub)
                    self._note(here / sub, (here / sub).lstat(), "a symbolic link: never followed")
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found.extend(here / name for name in files)
        return found

    # -- the tick --------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Look at new events (or rescan), and claim every candidate whose copy is complete."""
        now = time.time() if now is None else now
        with self.lock:
            touched, self.events = self.events, set()
            closed, self.closed = self.closed, set()
        if now - self.last_scan >= self.scan_seconds:
            touched.update(self.scan())
            self.last_scan = now
        for path in touched:
            if path in self.seen or self._candidate(path):
                self._observe(path, now, path in closed)
        for path in list(self.seen):
            self._observe(path, now, False)
            seen = self.seen.get(path)
            if seen is not None and self._ready(seen, now):
                del self.seen[path]
                self._claim(path)

    def _observe(self, path: Path, now: float, closed: bool) -> None:
        try:
            st = path.lstat()
        except OSError:
            self.seen.pop(path, None)  # moved away or deleted
            return
        seen = self.seen.get(path)
        if seen is None or (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
            self.seen[path] = Seen(st.st_size, st.st_mtime_ns, now, now if closed else None)
        elif closed:
            seen.closed_at = now

    def _ready(self, seen: Seen, now: float) -> bool:
        if now - seen.since >= self.stable_seconds:
            return True
        return seen.closed_at is not None and now - seen.closed_at >= self.close_settle_seconds

    # -- claiming --------------------------------------------------------------------------------

    def _claim(self, path: Path) -> None:
        rel = str(path.relative_to(self.root))
        try:
            decode.probe(path)
        except decode.SourceError as error:
            reason = str(error).replace(str(path.resolve()), rel)
            self.reject(path, reason)
            return
        except OSError as error:
            self.log.warning("inbox: %s cannot be read yet (%s); trying again", rel, error)
            return
        digest = decode.content_hash(path)
        where = self.is_known(digest)
        if where is not None:
            self.reject(path, f"the same film is already in the workspace ({where})")
            return
        slug = slugify(path, digest)
        target = self.films / slug / path.name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                self.reject(path, f"{target} already exists; remove one of the two")
                return
            _move(path, target)
        except OSError as error:
            self.log.error("inbox: cannot move %s to %s: %s (check permissions and free space)",
                           rel, target.parent, error.strerror or error)  # fmt: skip
            return
        self.log.info("claimed %s → films/%s/", rel, slug)
        self.on_claim(Claimed(target, rel, digest, slug))

    def reject(self, path: Path, reason: str) -> None:
        """Move an unreadable film to failed/ (same subfolders) with its reason beside it."""
        rel = path.relative_to(self.root)
        target = _free_name(self.failed_dir / rel)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, target)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            atomic_write(_reason_path(target), f"{rel}\n{reason}\n{stamp}\n".encode())
        except OSError as error:
            self.log.error("inbox: cannot move %s to %s: %s", rel, self.failed_dir, error)
            return
        self.log.warning("rejected %s → %s/%s: %s", rel, FAILED, target.relative_to(
            self.failed_dir), reason)  # fmt: skip


def _move(source: Path, target: Path) -> None:
    """Rename; across filesystems, copy to a temp name in the target folder, rename, unlink."""
    try:
        os.rename(source, target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        atomic_write(target, lambda tmp: shutil.copy2(source, tmp))
        source.unlink()


def _free_name(path: Path) -> Path:
    """`path`, or `name (2).ext`… when taken (a film with the same name failed before)."""
    if not path.exists():
        return path
    for n in range(2, 10_000):
        other = path.with_name(f"{path.stem} ({n}){path.suffix}")
        if not other.exists():
            return other
    raise OSError(errno.EEXIST, f"too many files named like {path.name}")


def _reason_path(target: Path) -> Path:
    """`<name>.reason.txt`, the name shortened when the full one would be too long."""
    name = target.name + REASON_SUFFIX
    while len(os.fsencode(name)) > NAME_MAX:
        name = name[: -len(REASON_SUFFIX) - 1] + REASON_SUFFIX
    return target.with_name(name)
    return None
