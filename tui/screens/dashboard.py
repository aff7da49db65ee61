"""Films and their state, the job queue, the daemon and the GPU, refreshed every two seconds."""

from __future__ import annotations

import subprocess
import sys

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from reelface import catalogue, jobs

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


class Dashboard(Screen):
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
    DEFAULT_CSS = """
    Dashboard #films { height: 1fr; }
    Dashboard #jobs { height: 1fr; }
    Dashboard #status { height: 2; background: $panel; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield DataTable(id="films", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#films", DataTable).add_columns(
            "film", "kind", "state", "progress", "faces", "passed", "error"
        )
        self.query_one("#jobs", DataTable).add_columns(
            "job", "kind", "what", "state", "progress", "attempts", "error"
        )
        self.message = ""
        self.gpu = gpu_line()
        self.refresh_tables()
        self.set_interval(2.0, self.refresh_tables)

    def refresh_tables(self) -> None:
        conn = self.app.conn
        films = self.query_one("#films", DataTable)
        row = films.cursor_row
        films.clear()
        for film in catalogue.films(conn):
            total = film["frames_total"] or 0
            done = film["last_frame"] + 1
            share = 1.0 if film["state"] == "done" else (done / total if total else 0.0)
            bar = _bar(share)
            films.add_row(
                film["slug"],
                film["kind"],
                film["state"],
                bar,
                str(film["faces"]),
                str(film["faces_passed"]),
                film["error"] or "",
                key=str(film["id"]),
            )
        films.move_cursor(row=row)
        table = self.query_one("#jobs", DataTable)
        row = table.cursor_row
        table.clear()
        for job in jobs.listing(conn, limit=200):
            table.add_row(
                str(job.id),
                job.kind,
                job.label(),
                job.state,
                _bar(job.progress),
                str(job.attempts),
                job.error or "",
                key=str(job.id),
            )
        table.move_cursor(row=row)
        self.query_one("#status", Static).update(
            f"[b]{self.app.workspace.root}[/]  daemon: {self.daemon_state()}  {self.gpu}\n"
            f"{self.message}"
        )

    def daemon_state(self) -> str:
        from reelface.daemon.pidfile import running_pid

        pid = running_pid(self.app.workspace)
        return f"[green]up (pid {pid})[/]" if pid else "[red]down[/]"

    def _selected_job(self) -> int | None:
        table = self.query_one("#jobs", DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_daemon(self, verb: str) -> None:
        command = [
            sys.executable,
            "-m",
            "reelface",
            "-w",
            str(self.app.workspace.root),
            "daemon",
            verb,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        self.message = (done.stdout or done.stderr).strip().splitlines()[-1:] or [""]
        self.message = self.message[0]
        self.refresh_tables()

    def action_retry(self) -> None:
        self._job_change(jobs.retry, "queued again")

    def action_cancel(self) -> None:
        self._job_change(jobs.cancel, "cancelled")

    def _job_change(self, change, verb: str) -> None:
        job = self._selected_job()
        if job is None:
            return
        try:
            change(self.app.conn, job)
            self.message = f"job {job} {verb}"
        except jobs.JobError as error:
            self.message = str(error)
        self.refresh_tables()

    def action_log(self) -> None:
        from .job_log import JobLog

        job = self._selected_job()
        if job is not None:
            self.app.push_screen(JobLog(job))

    def action_launch(self, kind: str) -> None:
        def done(params: dict | None) -> None:
            if params:
                job = jobs.enqueue(self.app.conn, kind, params)
                self.message = f"{kind} queued as job {job}; the daemon runs it"
                self.refresh_tables()

        self.app.push_screen(LaunchForm(kind, FORMS[kind]), done)


def _bar(share: float, width: int = 12) -> str:
    filled = int(round(max(0.0, min(1.0, share)) * width))
    return "█" * filled + "░" * (width - filled) + f" {share:4.0%}"
