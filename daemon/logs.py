"""Daemon logging: Rich on the terminal, a rotating file in logs/, one file per job in jobs/."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reelface.workspace import Workspace

LOGGER = "reelface.daemon"
FORMAT = "%(asctime)s %(levelname)-7s %(message)s"


def daemon_log_path(ws: Workspace) -> Path:
    return ws.root / "logs" / "daemon.log"


def job_log_path(ws: Workspace, job_id: int) -> Path:
    return ws.root / "jobs" / f"{job_id}.log"


def setup(ws: Workspace, console: bool, verbose: bool = False) -> logging.Logger:
    """The daemon's logger, writing to logs/daemon.log and (in the foreground) the terminal."""
    log = logging.getLogger(LOGGER)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    path = daemon_log_path(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.handlers.RotatingFileHandler(
        path, maxBytes=10 << 20, backupCount=3, encoding="utf-8"
    )
    to_file.setFormatter(logging.Formatter(FORMAT))
    log.addHandler(to_file)
    if console:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    return log


class _OnlyJob(logging.Filter):
    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "job_id", None) == self.job_id


@contextmanager
def job_logger(ws: Workspace, job_id: int) -> Iterator[logging.LoggerAdapter]:
    """A logger whose records also land in jobs/<id>.log (appended: one file over all attempts)."""
    log = logging.getLogger(LOGGER)
    path = job_log_path(ws, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_OnlyJob(job_id))
    log.addHandler(handler)
    try:
        yield logging.LoggerAdapter(log, {"job_id": job_id})
    finally:
        log.removeHandler(handler)
        handler.close()
