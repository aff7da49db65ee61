"""The inbox: find films dropped in it, wait until each copy is complete, claim or reject it.

A file is claimed when its size and mtime have not changed for `stable_seconds`, or for
`close_settle_seconds` after a close-after-write event, and no process holds it open for writing.
Claiming moves it into `workspace/films/<slug>/` and queues its jobs; an unreadable film moves to
`inbox/failed/` with a `<name>.reason.txt` beside it, and is retried when it changes after that.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import suppress as _quiet
from dataclasses import dataclass, field
from pathlib import Path

from reelface.io import NAME_MAX, atomic_write
from reelface.pipeline import decode
from reelface.workspace import slugify

VIDEO_SUFFIXES = {
    ".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
    ".wmv", ".flv", ".vob", ".ogv", ".3gp", ".mxf",
}  # fmt: skip
# Downloads in progress by their name (curl, browsers, download managers): never claimed.
PARTIAL_SUFFIXES = {".part", ".partial", ".tmp", ".crdownload", ".download"}
FAILED = "failed"
REASON_SUFFIX = ".reason.txt"
NOTED = re.compile(r"^(\d+) bytes, mtime_ns (\d+)$", re.M)  # a reason note's last line


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
    unlistable: dict[Path, str] = field(default_factory=dict)  # folder → why, logged once
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
                if value := getattr(event, attr, ""):
                    path = Path(os.fsdecode(value))
                    self.events.add(path)
                    if event.event_type == "closed" and attr == "src_path":
                        self.closed.add(path)

    # -- finding candidates ----------------------------------------------------------------------

    def _inside(self, path: Path) -> bool:
        """In the inbox, not in failed/, and reached without following a symlink out of it."""
        if path == self.root or not path.is_relative_to(self.root):
            return False
        if path.is_relative_to(self.failed_dir):
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
        if path.suffix.lower() in PARTIAL_SUFFIXES:
            self._note(path, st, "a download in progress (by its name): claimed once renamed")
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
        found: list[Path] = []
        problems: dict[Path, str] = {}
        for folder, dirs, files in _walk(self.root, problems):
            here = Path(folder)
            for sub in list(dirs):
                if (here / sub).is_symlink():
                    dirs.remove(sub)
                    self._note(here / sub, (here / sub).lstat(), "a symbolic link: never followed")
            found.extend(here / name for name in files)
        new = {f: why for f, why in problems.items() if self.unlistable.get(f) != why}
        for line in unlistable(self.root, new):  # once per folder, not every scan
            self.log.warning("inbox: %s", line)
        self.unlistable = problems
        return found

    def changed_failures(self) -> list[Path]:
        """Films in failed/ written to since they failed (a writer still had them open)."""
        out = []
        for film in self.failed_dir.rglob("*"):
            if film.suffix.lower() not in VIDEO_SUFFIXES:
                continue
            try:
                st, noted = film.lstat(), NOTED.search(reason_path(film).read_text())
            except (OSError, UnicodeDecodeError):
                continue  # no note of ours: not a failure we made
            if noted and (int(noted[1]), int(noted[2])) != (st.st_size, st.st_mtime_ns):
                out.append(film)
        return out

    def _source(self, path: Path) -> str:
        """Where a film was dropped, relative to the inbox (a failed one's note says)."""
        if path.is_relative_to(self.failed_dir):
            with _quiet(OSError, IndexError, UnicodeDecodeError):
                return reason_path(path).read_text().splitlines()[0]
            return str(path.relative_to(self.failed_dir))
        return str(path.relative_to(self.root))

    # -- the tick --------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Look at new events (or rescan), and claim every candidate whose copy is complete."""
        now = time.time() if now is None else now
        with self.lock:
            touched, self.events = self.events, set()
            closed, self.closed = self.closed, set()
        if now - self.last_scan >= self.scan_seconds:
            touched.update(self.scan())
            for path in set(self.changed_failures()) - set(self.seen):
                self.log.info("inbox: %s changed after it failed: trying it again", path.name)
                self._observe(path, now, False)
            self.last_scan = now
        for path in touched:
            if path in self.seen or self._candidate(path):
                self._observe(path, now, path in closed)
        for path in list(self.seen):
            self._observe(path, now, False)
        ready = [path for path, seen in self.seen.items() if self._ready(seen, now)]
        busy = writers({os.path.realpath(p) for p in ready}) if ready else {}
        for path in ready:
            pid = busy.get(os.path.realpath(path))
            if pid is not None:  # quiet, but its writer may append again: wait for the close
                self.seen[path].since, self.seen[path].closed_at = now, None
                with _quiet(OSError):
                    self._note(path, path.lstat(), f"open for writing (pid {pid}): waiting")
                continue
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
        settled = seen.closed_at is not None and now - seen.closed_at >= self.close_settle_seconds
        return settled or now - seen.since >= self.stable_seconds

    # -- claiming --------------------------------------------------------------------------------

    def _claim(self, path: Path) -> None:
        rel = self._source(path)
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
        if path.is_relative_to(self.failed_dir):
            reason_path(path).unlink(missing_ok=True)
        for old in self._earlier_parts(rel, target):  # the same download, cut off before
            old.unlink(missing_ok=True)
            reason_path(old).unlink(missing_ok=True)
            self.log.info("inbox: removed %s/%s: the whole film came in after it",
                          FAILED, old.relative_to(self.failed_dir))  # fmt: skip
        self.on_claim(Claimed(target, rel, digest, slug))

    def reject(self, path: Path, reason: str) -> None:
        """Move an unreadable film to failed/ (same subfolders) with its reason beside it; it
        replaces an earlier failed copy that it begins with (a download cut off, then resumed)."""
        rel = self._source(path)
        if path.is_relative_to(self.failed_dir):
            target = path
        else:
            earlier = self._earlier_parts(rel, path)
            target = earlier[0] if earlier else _free_name(self.failed_dir / rel)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            st, stamp = target.lstat(), time.strftime("%Y-%m-%d %H:%M:%S")
            # The size and mtime it failed at: a later change retries it (changed_failures).
            tail = f"{st.st_size} bytes, mtime_ns {st.st_mtime_ns}"
            atomic_write(reason_path(target), f"{rel}\n{reason}\n{stamp}\n{tail}\n".encode())
        except OSError as error:
            self.log.error("inbox: cannot move %s to %s: %s", rel, self.failed_dir, error)
            return
        self.log.warning("rejected %s → %s/%s: %s", rel, FAILED, target.relative_to(
            self.failed_dir), reason)  # fmt: skip

    def _earlier_parts(self, rel: str, whole: Path) -> list[Path]:
        """Failed copies of the film dropped at `rel` whose bytes `whole` begins with."""
        first = self.failed_dir / rel
        names = [
            first,
            *(first.with_name(f"{first.stem} ({n}){first.suffix}") for n in range(2, 99)),
        ]
        return [old for old in names if old.is_file() and old != whole
                and self._source(old) == rel and _begins(whole, old)]  # fmt: skip


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
    for n in range(1, 10_000):
        other = path.with_name(f"{path.stem} ({n}){path.suffix}") if n > 1 else path
        if not other.exists():
            return other
    raise OSError(errno.EEXIST, f"too many files named like {path.name}")


def reason_path(target: Path) -> Path:
    """`<name>.reason.txt`, the name shortened when the full one would be too long."""
    name = target.name + REASON_SUFFIX
    while len(os.fsencode(name)) > NAME_MAX:
        name = name[: -len(REASON_SUFFIX) - 1] + REASON_SUFFIX
    return target.with_name(name)


def _begins(whole: Path, part: Path) -> bool:
    """Whether `whole`'s bytes begin with all of `part`'s (nothing of `part` is lost by it)."""
    with _quiet(OSError), open(part, "rb") as a, open(whole, "rb") as b:
        if part.stat().st_size > whole.stat().st_size or part.samefile(whole):
            return False
        while chunk := a.read(1 << 20):
            if b.read(len(chunk)) != chunk:
                return False
        return True
    return False


def writers(paths: set[str]) -> dict[str, int]:
    """Which of `paths` a process holds open for writing, as path → pid (Linux /proc; those
    that cannot be read, another user's or a process gone, are skipped)."""
    found = {}
    for fd in glob.glob("/proc/[0-9]*/fd/[0-9]*"):
        with _quiet(OSError):
            target = os.readlink(fd)
            if target in paths and _writing(fd):
                found[target] = int(fd.split("/")[2])
    return found


def _writing(fd: str) -> bool:
    """Whether a /proc descriptor is open for writing; unknown counts as yes (the safe side)."""
    with _quiet(OSError, ValueError, StopIteration), open(fd.replace("/fd/", "/fdinfo/")) as info:
        flags = next(line for line in info if line.startswith("flags:"))
        return int(flags.split()[1], 8) & os.O_ACCMODE != os.O_RDONLY
    return True


def _walk(root: Path, problems: dict[Path, str]):
    """os.walk without failed/, hidden and symlinked folders; unlistable ones land in problems."""
    error = lambda e: problems.__setitem__(Path(e.filename), e.strerror or str(e))  # noqa: E731
    for folder, dirs, files in os.walk(root, onerror=error, followlinks=False):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d != FAILED]
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        yield folder, dirs, files


def unlistable(root: Path, problems: dict[Path, str] | None = None) -> list[str]:
    """One line per inbox folder that cannot be listed, naming it and the fix (`daemon status`)."""
    if problems is None:
        problems = {}
        for _ in _walk(root, problems) if root.is_dir() else ():
            pass
    return [f"cannot list {folder} ({why}): films in it are not seen; fix: chmod u+rx '{folder}'"
            for folder, why in sorted(problems.items())]  # fmt: skip
