"""Films and their state, the job queue, the daemon and the GPU, refreshed every two seconds.

Everything shown is read in workers (background.py), and the daemon is started and stopped from
one, so a busy catalogue or a slow daemon never holds up the keys.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from reelface import catalogue, jobs
from reelface.workspace import Workspace

from ..background import BackgroundScreen
from .launch import LaunchForm

FORMS: dict[str, list[tuple[str, str]]] = {
    "export": [
        ("out", "output folder"),
        ("reviewed_only", "only faces a person kept (yes/no)"),
        ("zip", "zip name, e.g. group07_final (empty: none)"),
    ],
    "train": [
        ("data", "training root(s), separated by spaces"),
        ("out", "run folder"),
        ("steps", "steps"),
        ("batch", "batch size"),
    ],
    "evaluate": [
        ("model", "generator checkpoint"),
        ("testset", "test-set folder"),
        ("arcface", "ArcFace file"),
        ("out", "report folder"),
    ],
}


def gpu_line() -> str:
    """Which accelerators onnxruntime (and torch, if installed) can use here."""
    from reelface.models import runtime

    return "GPU: " + ("CUDA" if runtime.cuda_available() else "none (CPU)")


def daemon_state(ws: Workspace) -> str:
    """Whether a daemon holds the workspace, as the status line shows it."""
    from reelface.daemon.pidfile import running_pid

    pid = running_pid(ws)
    return f"[green]up (pid {pid})[/]" if pid else "[red]down[/]"


def run_daemon(ws: Workspace, verb: str) -> str:
    """`reelface daemon start|stop` in a process of its own; the last line it printed."""
    command = [sys.executable, "-m", "reelface", "-w", str(ws.root), "daemon", verb]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return f"daemon {verb}: no answer in 60 s"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[-1] if lines else ""


@dataclass
class Snapshot:
    """What the dashboard shows, read in one worker."""

    films: list[dict[str, Any]]
    jobs: list[jobs.Job]
    daemon: str
    message: str | None  # what the change read with it did; None: there was no change


FILM_COLUMNS = ("film", "kind", "state", "progress", "faces", "passed", "error")
JOB_COLUMNS = ("job", "kind", "what", "state", "progress", "attempts", "error")


class Dashboard(BackgroundScreen):
    BINDINGS = [
        Binding("i", "app.identities", "Identities", id="dashboard.identities"),
        Binding("s", "daemon('start')", "Start daemon", id="dashboard.start"),
        Binding("S", "daemon('stop')", "Stop daemon", id="dashboard.stop"),
        Binding("r", "retry", "Retry job", id="dashboard.retry"),
        Binding("c", "cancel", "Cancel job", id="dashboard.cancel"),
        Binding("l", "log", "Job log", id="dashboard.log"),
        Binding("e", "launch('export')", "Export", id="dashboard.export"),
        Binding("t", "launch('train')", "Train", id="dashboard.train"),
        Binding("v", "launch('evaluate')", "Evaluate", id="dashboard.evaluate"),
        Binding("tab", "focus_next", "Films/jobs", show=False, id="dashboard.tab"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield DataTable(id="films", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#films", DataTable).add_columns(*FILM_COLUMNS)
        self.query_one("#jobs", DataTable).add_columns(*JOB_COLUMNS)
        self.loaded = False
        self.message = ""
        self.daemon = "…"
        self.gpu = "GPU: …"
        self.show_status()
        self.detect_gpu()
        self.set_interval(2.0, self.tick)

    def on_screen_resume(self) -> None:
        # The first time shown, and back from every other screen (ticks skip hidden screens).
        self.refresh_tables()

    def tick(self) -> None:
        if self.is_current and not self.working("dashboard"):
            self.refresh_tables()

    def refresh_tables(self, change: Callable[[sqlite3.Connection], str] | None = None) -> None:
        """Read films, jobs and the daemon's state in a worker, after `change` (a job edit that
        says what it did), and show them."""
        ws = self.app.workspace

        def read(conn: sqlite3.Connection) -> Snapshot:
            message = change(conn) if change else None
            films = catalogue.films(conn)
            return Snapshot(films, jobs.listing(conn, limit=200), daemon_state(ws), message)

        self.background(read, self.show, group="dashboard")

    def show(self, snapshot: Snapshot) -> None:
        film_rows = []
        for film in snapshot.films:
            total = film["frames_total"] or 0
            done = film["last_frame"] + 1
            share = 1.0 if film["state"] == "done" else (done / total if total else 0.0)
            film_rows.append((str(film["id"]), (
                film["slug"], film["kind"], film["state"], _bar(share), str(film["faces"]),
                str(film["faces_passed"]), film["error"] or "",
            )))  # fmt: skip
        job_rows = [
            (str(job.id), (str(job.id), job.kind, job.label(), job.state, _bar(job.progress),
                           str(job.attempts), job.error or ""))
            for job in snapshot.jobs
        ]  # fmt: skip
        _fill(self.query_one("#films", DataTable), FILM_COLUMNS, film_rows)
        _fill(self.query_one("#jobs", DataTable), JOB_COLUMNS, job_rows)
        self.loaded = True
        self.daemon = snapshot.daemon
        if snapshot.message is not None:
            self.message = snapshot.message
        self.show_status()

    def show_status(self) -> None:
        note = self.message or ("" if self.loaded else "loading…")
        self.query_one("#status", Static).update(
            f"[b]{self.app.workspace.root}[/]  daemon: {self.daemon}  {self.gpu}\n{note}"
        )

    @work(thread=True, group="gpu")
    def detect_gpu(self) -> None:
        # onnxruntime is imported here: a second or more on a cold start.
        self.on_ui(self._show_gpu, gpu_line())

    def _show_gpu(self, line: str) -> None:
        self.gpu = line
        self.show_status()

    def _selected_job(self) -> int | None:
        table = self.query_one("#jobs", DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_daemon(self, verb: str) -> None:
        if self.working("daemon"):
            self.message = "wait: the last daemon command is still running"
        else:
            self.message = f"daemon {verb}…"
            self.daemon_command(verb)
        self.show_status()

    @work(thread=True, group="daemon")
    def daemon_command(self, verb: str) -> None:
        self.on_ui(self._daemon_done, run_daemon(self.app.workspace, verb))

    def _daemon_done(self, line: str) -> None:
        self.message = line
        self.refresh_tables()

    def action_retry(self) -> None:
        self._job_change(jobs.retry, "queued again")

    def action_cancel(self) -> None:
        self._job_change(jobs.cancel, "cancelled")

    def _job_change(self, change: Callable[[sqlite3.Connection, int], Any], verb: str) -> None:
        job = self._selected_job()
        if job is None:
            return

        def edit(conn: sqlite3.Connection) -> str:
            try:
                change(conn, job)
            except jobs.JobError as error:
                return str(error)
            return f"job {job} {verb}"

        self.refresh_tables(edit)

    def action_log(self) -> None:
        from .job_log import JobLog

        job = self._selected_job()
        if job is not None:
            self.app.push_screen(JobLog(job))

    def action_launch(self, kind: str) -> None:
        def done(params: dict | None) -> None:
            if params:
                self.refresh_tables(
                    lambda conn: (
                        f"{kind} queued as job {jobs.enqueue(conn, kind, params)}; "
                        "the daemon runs it"
                    )
                )

        self.app.push_screen(LaunchForm(kind, FORMS[kind]), done)


def _fill(table: DataTable, headers: tuple[str, ...], rows: list[tuple[str, tuple]]) -> None:
    """Rows (key, cells) into `table`, cursor kept, each column as wide as its widest cell.

    The widths are set here, not left to the table: a filled table sizes its own columns only
    on a later idle pass, which a busy screen may not reach before it is drawn. Untouched when
    nothing changed (the 2 s refresh would redraw it every time)."""
    if getattr(table, "shown_rows", None) == rows:
        return
    table.shown_rows = rows
    row = table.cursor_row
    table.clear(columns=True)
    for i, header in enumerate(headers):
        width = max([len(header), *(len(cells[i]) for _, cells in rows)])
        table.add_column(header, width=width)
    for key, cells in rows:
        table.add_row(*cells, key=key)
    table.move_cursor(row=row)


def _bar(share: float, width: int = 12) -> str:
    filled = int(round(max(0.0, min(1.0, share)) * width))
    return "█" * filled + "░" * (width - filled) + f" {share:4.0%}"
