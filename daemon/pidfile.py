"""One daemon per workspace: a pid file held with an advisory lock the kernel drops on any death."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from reelface.errors import ReelfaceError
from reelface.workspace import Workspace

PID_NAME = "daemon.pid"


class DaemonError(ReelfaceError, RuntimeError):
    """The daemon cannot start, stop or be reached; the message names the fix."""


def pid_path(ws: Workspace) -> Path:
    return ws.root / PID_NAME


@dataclass
class PidLock:
    """Held by the running daemon; a kill -9 releases it, so a stale file never blocks a start."""

    path: Path
    fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = read_pid(self.path)
            raise DaemonError(
                f"a daemon already runs for this workspace (pid {pid or '?'}, {self.path}); "
                "stop it with `reelface daemon stop`"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().split()
    except OSError:
        return None
    return int(text[0]) if text and text[0].isdigit() else None


def running_pid(ws: Workspace) -> int | None:
    """The pid of the daemon holding this workspace, or None when none does."""
    path = pid_path(ws)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_pid(path) or -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
