"""`reelface daemon …` and `reelface jobs …`: run, start, stop and query the service and queue."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reelface import catalogue, errors, jobs
from reelface import workspace as workspace_mod
from reelface.jobs import JobError, tasks
from reelface.workspace import Workspace

from . import logs, settings
from .pidfile import DaemonError, pid_path, running_pid

console = Console(stderr=True)
out = Console()


def one_line_errors(command):
    """reelface's own errors (errors.is_own) as one line and exit code 2, as core's CLI does."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except Exception as error:
            if not errors.is_own(error):
                raise
            from reelface.cli.group import fail  # here: reelface.cli loads this module

            fail(error)

    return wrapper


def _ws(ctx: click.Context, create: bool = False) -> Workspace:
    """The workspace core's CLI would use (-w, $REELFACE_WORKSPACE, cwd, default), announced."""
    from reelface.cli.group import announce  # here: reelface.cli loads this module

    ws = workspace_mod.open_workspace(ctx.obj, create=create)
    announce(ctx, ws)
    return ws


# -- daemon ------------------------------------------------------------------------------------


@click.group()
def daemon() -> None:
    """Watch the inbox and run jobs: in the foreground (tmux) or detached."""


def _run_options(command):
    for option in reversed(
        [
            click.option("--ray", "ray_address", metavar="ADDRESS",
                         help="Run extraction jobs as Ray tasks on this cluster ('local': a "
                         "private one here). Needs `pip install 'reelface[ray]'`."),
            click.option("--cpu-jobs", type=click.IntRange(min=1),
                         help="CPU jobs in parallel [one per 4 cores]."),
            click.option("--gpus", type=click.IntRange(min=0),
                         help="GPUs to use [all detected]; 0 runs everything on the CPU."),
            click.option("--stable-seconds", type=click.FloatRange(min=0),
                         help="A file is complete when unchanged this long [10]."),
        ]
    ):  # fmt: skip
        command = option(command)
    return command


def _daemon_config(ws: Workspace, cpu_jobs, gpus, stable_seconds) -> settings.DaemonConfig:
    cfg = settings.load(ws)
    changes = {"cpu_jobs": cpu_jobs, "gpus": gpus, "stable_seconds": stable_seconds}
    return replace(cfg, **{k: v for k, v in changes.items() if v is not None})


@daemon.command("run")
@_run_options
@click.option("--quiet", is_flag=True, help="Log to logs/daemon.log only, not the terminal.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
@click.pass_context
@one_line_errors
def daemon_run(ctx, ray_address, cpu_jobs, gpus, stable_seconds, quiet, verbose) -> None:
    """Run in the foreground until Ctrl-C or SIGTERM (the current batch is finished first)."""
    from .service import Daemon

    ws = _ws(ctx, create=True)
    cfg = _daemon_config(ws, cpu_jobs, gpus, stable_seconds)
    log = logs.setup(ws, console=not quiet, verbose=verbose)
    try:
        Daemon(ws, cfg, ray_address, log).run()
    except Exception as error:
        if errors.is_own(error):  # in daemon.log too, as one line: a detached daemon has no tty
            log.error("daemon cannot run: %s", errors.one_line(error))
        raise


@daemon.command("start")
@_run_options
@click.option("--wait", "wait_s", default=60.0, show_default=True, help="Seconds to wait for it.")
@click.pass_context
@one_line_errors
def daemon_start(ctx, ray_address, cpu_jobs, gpus, stable_seconds, wait_s) -> None:
    """Start detached (its own session, pid file, logs in the workspace's logs/)."""
    ws = _ws(ctx, create=True)
    pid = running_pid(ws)
    if pid:
        raise DaemonError(f"a daemon already runs for {ws.root} (pid {pid})")
    args = [sys.executable, "-m", "reelface", "-w", str(ws.root), "daemon", "run", "--quiet"]
    for flag, value in (("--ray", ray_address), ("--cpu-jobs", cpu_jobs), ("--gpus", gpus),
                        ("--stable-seconds", stable_seconds)):  # fmt: skip
        if value is not None:
            args += [flag, str(value)]
    output = ws.root / "logs" / "daemon.out"
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "ab") as sink:
        child = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            tail = output.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise DaemonError(f"the daemon exited at once: {tail[0]} (see {output})")
        if running_pid(ws) == child.pid:
            out.print(f"daemon started: pid {child.pid}, log {logs.daemon_log_path(ws)}")
            return
        time.sleep(0.1)
    raise DaemonError(f"the daemon (pid {child.pid}) did not take the workspace; see {output}")


@daemon.command("stop")
@click.option("--timeout", default=120.0, show_default=True,
              help="Seconds to wait for the current batch to finish.")  # fmt: skip
@click.option("--kill", is_flag=True, help="Kill it (SIGKILL) if it has not stopped by then.")
@click.pass_context
@one_line_errors
def daemon_stop(ctx, timeout: float, kill: bool) -> None:
    """Stop the detached daemon cleanly (SIGTERM): running jobs checkpoint and resume next start."""
    ws = _ws(ctx)
    pid = running_pid(ws)
    if not pid:
        out.print(f"no daemon runs for {ws.root}")
        return
    host = (pid_path(ws).read_text().split() + ["", ""])[1]
    if host and host != socket.gethostname():
        raise DaemonError(f"the daemon (pid {pid}) runs on {host}: stop it there")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running_pid(ws) is None:
            out.print(f"daemon stopped (pid {pid})")
            return
        time.sleep(0.2)
    if kill:
        os.kill(pid, signal.SIGKILL)
        out.print(f"daemon killed (pid {pid}); its jobs resume at the next start")
        return
    raise DaemonError(f"the daemon (pid {pid}) is still finishing; wait, or add --kill")


@daemon.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@one_line_errors
def daemon_status(ctx, as_json: bool) -> None:
    """Whether a daemon runs for this workspace, its settings and the jobs' states."""
    ws = _ws(ctx)
    pid = running_pid(ws)
    cfg = settings.load(ws)
    conn = catalogue.open_catalogue(ws.catalogue_path)
    counts = jobs.counts(conn)
    active = jobs.listing(conn, ("running",))
    conn.close()
    from . import inbox, status  # here: it loads the decoder, which other commands do not need

    root = settings.inbox_path(ws, cfg)
    failed, blocked = status.inbox_failures(root), inbox.unlistable(root)
    stopped = [] if pid else [status.interrupted(job, cfg.max_attempts) for job in active]
    workers = status.ray_workers(ws) if pid else []
    if as_json:
        out.print_json(json.dumps({
            "running": bool(pid), "pid": pid, "workspace": str(ws.root), "jobs": counts,
            "active": [{"id": j.id, "kind": j.kind, "label": j.label(), "progress": j.progress}
                       for j in active],
            "config": asdict(cfg), "inbox": str(root), "interrupted": stopped,
            "inbox_failed": len(failed), "inbox_failed_newest": [
                {"file": name, "reason": why} for name, why in failed[:5]],
            "inbox_unlistable": blocked, "ray_workers": workers,
        }))  # fmt: skip
        return
    state = f"[green]running[/] (pid {pid})" if pid else "[yellow]not running[/]"
    out.print(f"daemon: {state}  workspace: {ws.root}")
    out.print(f"inbox: {root}  log: {logs.daemon_log_path(ws)}")
    out.print("jobs: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for job in [] if stopped else active:
        out.print(f"  {job.id} {job.kind} {job.label()} {job.progress:.0%} on {job.worker}")
    for n, line in enumerate(workers, 1):
        out.print(f"Ray worker {n}: {escape(line)}", soft_wrap=True)
    for line in stopped + [f"inbox: {line}" for line in blocked]:  # whole: they name paths
        out.print(escape(line), soft_wrap=True, style="yellow")
    if failed:  # the files really there, not a count kept somewhere else
        where = root / inbox.FAILED
        out.print(f"{where}: {len(failed)} film(s) not readable; newest:", soft_wrap=True)
    for name, why in failed[:3]:
        out.print(f"  {escape(name)}: {escape(why)}", soft_wrap=True)


# -- jobs --------------------------------------------------------------------------------------


@click.group("jobs")
def jobs_group() -> None:
    """List, cancel, retry, add and read the log of jobs."""


@jobs_group.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice(jobs.STATES),
              help="Only jobs in this state (repeatable).")  # fmt: skip
@click.option("--limit", default=50, show_default=True, help="Newest N jobs; 0 for all.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@one_line_errors
def jobs_list(ctx, states, limit: int, as_json: bool) -> None:
    """Jobs, newest first: kind, film, state, progress, attempts and last error."""
    ws = _ws(ctx)
    conn = catalogue.open_catalogue(ws.catalogue_path)
    rows = jobs.listing(conn, tuple(states), limit or None)
    conn.close()
    if as_json:
        click.echo(json.dumps([asdict(j) for j in rows], indent=2))
        return
    out.print(_jobs_table(ws, rows))


def _jobs_table(ws: Workspace, rows: list) -> Table:
    """The jobs as a table that keeps ids, kinds and states whole at any terminal width."""
    from reelface.cli.tables import Column, table  # here: reelface.cli loads this module

    columns = (
        Column("id", justify="right"), Column("kind"), Column("film", free=True, min_width=10),
        Column("state"), Column("done", justify="right", drop=4),
        Column("tries", justify="right", drop=3), Column("after", justify="right", drop=2),
        Column("ended", drop=5), Column("error", free=True, min_width=12),
    )  # fmt: skip
    colours = {"done": "green", "failed": "red", "running": "cyan", "cancelled": "yellow"}
    cells = []
    for j in rows:
        colour = colours.get(j.state, "white")
        ended = time.strftime("%H:%M:%S", time.localtime(j.finished)) if j.finished else ""
        cells.append([
            str(j.id), j.kind, escape(j.label()), f"[{colour}]{j.state}[/]",
            f"{j.progress:.0%}", str(j.attempts), str(j.depends_on or ""), ended,
            escape(j.error or ""),
        ])  # fmt: skip
    return table(f"jobs in {escape(str(ws.root))}", columns, cells, out.width)


@jobs_group.command("cancel")
@click.argument("ids", nargs=-1, required=True, type=int)
@click.pass_context
@one_line_errors
def jobs_cancel(ctx, ids: tuple[int, ...]) -> None:
    """Cancel queued or running jobs (a running one stops after its current batch)."""
    conn = catalogue.open_catalogue(_ws(ctx).catalogue_path)
    try:
        for job_id in ids:
            job = jobs.cancel(conn, job_id)
            out.print(f"job {job.id} ({job.kind} {job.label()}): cancelled")
    finally:
        conn.close()


@jobs_group.command("retry")
@click.argument("ids", nargs=-1, required=True, type=int)
@click.pass_context
@one_line_errors
def jobs_retry(ctx, ids: tuple[int, ...]) -> None:
    """Queue failed or cancelled jobs again; they resume from their last committed batch."""
    conn = catalogue.open_catalogue(_ws(ctx).catalogue_path)
    try:
        for job_id in ids:
            job = jobs.retry(conn, job_id)
            out.print(f"job {job.id} ({job.kind} {job.label()}): queued again")
    finally:
        conn.close()


@jobs_group.command("add")
@click.argument("kind", type=click.Choice([k for k in jobs.KINDS if k != "extract"]))
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter for the job (repeatable); values are JSON or plain text. Keys (* = "
    f"required): {tasks.describe()}.",
)
@click.option("--priority", default=0, show_default=True, help="Higher starts first.")
@click.option(
    "--first", is_flag=True, help=f"Do not wait for extraction to drain (priority {jobs.URGENT})."
)
@click.pass_context
@one_line_errors
def jobs_add(ctx, kind: str, params, priority: int, first: bool) -> None:
    """Queue a cluster, export, train or evaluate job for the daemon."""  # fmt: skip
    values = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise JobError(f"parameter {item!r} is not KEY=VALUE")
        try:
            values[key] = json.loads(value)
        except json.JSONDecodeError:
            values[key] = value
    values = tasks.validate(kind, values)
    conn = catalogue.open_catalogue(_ws(ctx).catalogue_path)
    try:
        job_id = jobs.enqueue(
            conn, kind, values, priority=max(priority, jobs.URGENT if first else 0)
        )
    finally:
        conn.close()
    out.print(f"job {job_id}: {kind} queued")


@jobs_group.command("log")
@click.argument("job_id", type=int)
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
@click.pass_context
@one_line_errors
def jobs_log(ctx, job_id: int, follow: bool) -> None:
    """Print a job's log (every attempt)."""
    ws = _ws(ctx)
    conn = catalogue.open_catalogue(ws.catalogue_path)
    try:
        job = jobs.get(conn, job_id)
        path = ws.root / (job.log_path or logs.job_log_path(ws, job_id).relative_to(ws.root))
        position = 0
        while True:
            if Path(path).exists():
                with open(path, encoding="utf-8", errors="replace") as handle:
                    handle.seek(position)
                    sys.stdout.write(handle.read())
                    position = handle.tell()
                    sys.stdout.flush()
            elif not follow:
                raise JobError(f"job {job_id} has no log yet ({path}); it has not started")
            if not follow or jobs.state_of(conn, job_id) in jobs.ENDED:
                return
            time.sleep(0.5)
    finally:
        conn.close()
