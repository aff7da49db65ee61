"""The log of one job, followed while it runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Log, Static

from reelface import jobs

from ..background import BackgroundScreen


def read_log(
    conn: sqlite3.Connection, root: Path, job_id: int, offset: int
) -> tuple[jobs.Job, str, int]:
    """The job, what its log holds past `offset` (nothing while unreadable), and where it ends."""
    job = jobs.get(conn, job_id)
    if not job.log_path:
        return job, "", offset
    path = Path(job.log_path)
    if not path.is_absolute():
        path = root / path
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            handle.seek(offset)
            return job, handle.read(), handle.tell()
    except OSError:
        return job, "", offset


class JobLog(BackgroundScreen):
    """The job and its log are read in a worker every second."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="log.back")]

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self.read_to = 0

    def compose(self) -> ComposeResult:
        yield Static(f"[b]job {self.job_id}[/] loading…", id="status")
        yield Log(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.follow()
        self.set_interval(1.0, self.follow)

    def follow(self) -> None:
        if self.working("log"):  # a slow read: this second is skipped, not queued
            return
        root, job_id, offset = self.app.workspace.root, self.job_id, self.read_to
        self.background(lambda conn: read_log(conn, root, job_id, offset), self.show, group="log")

    def show(self, read: tuple[jobs.Job, str, int]) -> None:
        job, text, self.read_to = read
        self.query_one("#status", Static).update(
            f"[b]job {job.id}[/] {job.kind} {job.label()} — {job.state} {job.progress:.0%}"
            + (f" — {job.error}" if job.error else "")
        )
        if text:
            self.query_one(Log).write(text)
