"""The log of one job, followed while it runs."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Log, Static

from reelface import jobs


class JobLog(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="log.back")]

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self.read_to = 0

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Log(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.follow()
        self.set_interval(1.0, self.follow)

    def follow(self) -> None:
        job = jobs.get(self.app.conn, self.job_id)
        self.query_one("#status", Static).update(
            f"[b]job {job.id}[/] {job.kind} {job.label()} — {job.state} {job.progress:.0%}"
            + (f" — {job.error}" if job.error else "")
        )
        if not job.log_path:
            return
        path = Path(job.log_path)
        if not path.is_absolute():
            path = self.app.workspace.root / path
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                handle.seek(self.read_to)
                text = handle.read()
                self.read_to = handle.tell()
        except OSError:
            return
        if text:
            self.query_one(Log).write(text)
