"""The job queue in the catalogue: enqueue, claim, progress, finish, cancel, retry, list.

Used by the daemon (which runs jobs), the CLI and the TUI (which add, cancel and inspect them).
Every write is one short transaction; state changes are guarded by the state they expect, so a
cancel from the TUI and a finish from the daemon never overwrite each other.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from reelface.catalogue import transaction
from reelface.errors import ReelfaceError

KINDS = ("extract", "cluster", "export", "train", "evaluate")
STATES = ("queued", "running", "done", "failed", "cancelled")
ENDED = ("done", "failed", "cancelled")
# Kinds that need the accelerator when the machine has one; the others run on the CPU.
GPU_KINDS = ("extract", "train", "evaluate")
# Training and evaluation wait for extraction to drain unless queued at or above this priority.
URGENT = 10


class JobError(ReelfaceError, ValueError):
    """A job reference or state change that makes no sense; the message names the fix."""


@dataclass(frozen=True)
class Job:
    """One row of the jobs table, params decoded."""

    id: int
    kind: str
    params: dict[str, Any]
    state: str
    priority: int
    film_id: int | None
    depends_on: int | None
    progress: float
    attempts: int
    error: str | None
    worker: str | None
    log_path: str | None
    created: float
    started: float | None
    finished: float | None
    updated: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        data = dict(row)
        data["params"] = json.loads(data["params"] or "{}")
        return cls(**data)

    @property
    def gpu(self) -> bool:
        return self.kind in GPU_KINDS

    def label(self) -> str:
        """A short human name: the film slug or the params' name."""
        p = self.params
        return str(next((p[k] for k in ("slug", "film", "name", "out", "path") if p.get(k)), ""))


def enqueue(
    conn: sqlite3.Connection,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    priority: int = 0,
    film_id: int | None = None,
    depends_on: int | None = None,
) -> int:
    """Add a queued job and return its id."""
    if kind not in KINDS:
        raise JobError(f"unknown job kind {kind!r} (known: {', '.join(KINDS)})")
    now = time.time()
    with transaction(conn):
        cur = conn.execute(
            """INSERT INTO jobs (kind, params, priority, film_id, depends_on, created, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (
                kind,
                json.dumps(params or {}, sort_keys=True),
                priority,
                film_id,
                depends_on,
                now,
                now,
            ),
        )
        return int(cur.lastrowid)


def enqueue_film(
    conn: sqlite3.Connection, params: dict[str, Any], cluster: bool = True, priority: int = 0
) -> tuple[int, int | None]:
    """An extraction job and (optionally) the clustering job that waits for it, together."""
    now = time.time()
    with transaction(conn):
        extract_id = int(
            conn.execute(
                """INSERT INTO jobs (kind, params, priority, created, updated)
                   VALUES ('extract', ?, ?, ?, ?)""",
                (json.dumps(params, sort_keys=True), priority, now, now),
            ).lastrowid
        )
        cluster_id = None
        if cluster:
            cluster_id = int(
                conn.execute(
                    """INSERT INTO jobs (kind, params, priority, depends_on, created, updated)
                       VALUES ('cluster', ?, ?, ?, ?, ?)""",
                    (json.dumps({"film": params["slug"]}), priority, extract_id, now, now),
                ).lastrowid
            )
    return extract_id, cluster_id


def get(conn: sqlite3.Connection, job_id: int) -> Job:
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise JobError(f"no job {job_id} (see `reelface jobs list`)")
    return Job.from_row(row)


def listing(
    conn: sqlite3.Connection, states: tuple[str, ...] = (), limit: int | None = None
) -> list[Job]:
    """Jobs, newest first, optionally only in some states."""
    query, args = "SELECT * FROM jobs", []
    if states:
        query += f" WHERE state IN ({', '.join('?' * len(states))})"
        args.extend(states)
    query += " ORDER BY id DESC"
    if limit:
        query += f" LIMIT {int(limit)}"
    return [Job.from_row(r) for r in conn.execute(query, args)]


def runnable(conn: sqlite3.Connection) -> list[Job]:
    """Queued jobs whose dependency is done, best first (priority, then age).

    Training and evaluation below `URGENT` wait while any extraction is queued or running.
    """
    rows = conn.execute(
        """SELECT j.* FROM jobs j LEFT JOIN jobs d ON d.id = j.depends_on
           WHERE j.state = 'queued' AND (j.depends_on IS NULL OR d.state = 'done')
           ORDER BY j.priority DESC, j.id"""
    ).fetchall()
    jobs = [Job.from_row(r) for r in rows]
    extracting = conn.execute(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'extract' AND state IN ('queued', 'running')"
    ).fetchone()[0]
    if extracting:
        jobs = [j for j in jobs if j.kind not in ("train", "evaluate") or j.priority >= URGENT]
    return jobs


def claim(conn: sqlite3.Connection, job_id: int, worker: str, log_path: str | None) -> Job | None:
    """Move a queued job to running for `worker`; None when someone else changed it first."""
    now = time.time()
    with transaction(conn):
        cur = conn.execute(
            """UPDATE jobs SET state = 'running', worker = ?, log_path = ?, attempts = attempts + 1,
               started = ?, finished = NULL, error = NULL, updated = ?
               WHERE id = ? AND state = 'queued'""",
            (worker, log_path, now, now, job_id),
        )
        if cur.rowcount != 1:
            return None
    return get(conn, job_id)


def progress(conn: sqlite3.Connection, job_id: int, value: float, **fields: Any) -> None:
    """Record progress (0–1) of a running job, and optionally its film id or params."""
    sets, args = ["progress = ?", "updated = ?"], [max(0.0, min(1.0, value)), time.time()]
    if "film_id" in fields:
        sets.append("film_id = ?")
        args.append(fields["film_id"])
    with transaction(conn):
        conn.execute(
            f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND state = 'running'",
            (*args, job_id),
        )


def finish(conn: sqlite3.Connection, job_id: int, state: str, error: str | None = None) -> bool:
    """End a running job as done, failed or cancelled; False if it was no longer running."""
    if state not in ENDED:
        raise JobError(f"cannot finish a job as {state!r}")
    now = time.time()
    with transaction(conn):
        cur = conn.execute(
            """UPDATE jobs SET state = ?, error = ?, finished = ?, updated = ?,
               progress = CASE WHEN ? = 'done' THEN 1.0 ELSE progress END
               WHERE id = ? AND state = 'running'""",
            (state, error, now, now, state, job_id),
        )
        if state in ("failed", "cancelled"):
            _cancel_dependents(conn, job_id, now)
        return cur.rowcount == 1


def release(conn: sqlite3.Connection, job_id: int, note: str | None = None) -> None:
    """Put a running job back in the queue (a clean stop): the attempt does not count."""
    with transaction(conn):
        conn.execute(
            """UPDATE jobs SET state = 'queued', worker = NULL, error = ?,
               attempts = MAX(attempts - 1, 0), updated = ? WHERE id = ? AND state = 'running'""",
            (note, time.time(), job_id),
        )


def _cancel_dependents(conn: sqlite3.Connection, job_id: int, now: float) -> None:
    conn.execute(
        """UPDATE jobs SET state = 'cancelled', error = ?, finished = ?, updated = ?
           WHERE depends_on = ? AND state = 'queued'""",
        (f"job {job_id} it waits for did not finish", now, now, job_id),
    )


def cancel(conn: sqlite3.Connection, job_id: int) -> Job:
    """Cancel a queued or running job; the daemon stops a running one after its current batch."""
    job = get(conn, job_id)
    if job.state in ENDED:
        raise JobError(f"job {job_id} is already {job.state}")
    now = time.time()
    with transaction(conn):
        conn.execute(
            """UPDATE jobs SET state = 'cancelled', error = 'cancelled by user', finished = ?,
               updated = ? WHERE id = ? AND state IN ('queued', 'running')""",
            (now, now, job_id),
        )
        _cancel_dependents(conn, job_id, now)
    return get(conn, job_id)


def retry(conn: sqlite3.Connection, job_id: int) -> Job:
    """Queue a failed or cancelled job again (it resumes where it stopped), with its dependents."""
    job = get(conn, job_id)
    if job.state not in ("failed", "cancelled"):
        raise JobError(f"job {job_id} is {job.state}; only failed or cancelled jobs are retried")
    now = time.time()
    with transaction(conn):
        conn.execute(
            """UPDATE jobs SET state = 'queued', error = NULL, finished = NULL, worker = NULL,
               updated = ? WHERE id = ?""",
            (now, job_id),
        )
        conn.execute(
            """UPDATE jobs SET state = 'queued', error = NULL, finished = NULL, updated = ?
               WHERE depends_on = ? AND state = 'cancelled' AND error LIKE 'job % it waits for%'""",
            (now, job_id),
        )
    return get(conn, job_id)


def recover(conn: sqlite3.Connection, max_attempts: int) -> tuple[list[int], list[int]]:
    """After a crash: `running` rows go back to the queue, or fail after too many attempts.

    Returns the ids re-queued and the ids failed. Only the daemon holding the workspace lock
    calls this, so every `running` row it sees is a leftover of a dead process.
    """
    now = time.time()
    with transaction(conn):
        rows = conn.execute("SELECT id, attempts FROM jobs WHERE state = 'running'").fetchall()
        requeued, failed = [], []
        for job_id, attempts in rows:
            if attempts >= max_attempts:
                conn.execute(
                    """UPDATE jobs SET state = 'failed', finished = ?, updated = ?, error = ?
                       WHERE id = ?""",
                    (now, now, f"the daemon died during each of {attempts} attempts", job_id),
                )
                _cancel_dependents(conn, job_id, now)
                failed.append(job_id)
            else:
                conn.execute(
                    """UPDATE jobs SET state = 'queued', worker = NULL, updated = ?,
                       error = 'interrupted (daemon stopped); resumed from the last batch'
                       WHERE id = ?""",
                    (now, job_id),
                )
                requeued.append(job_id)
    return requeued, failed


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many jobs are in each state."""
    out = dict.fromkeys(STATES, 0)
    for state, count in conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
        out[state] = count
    return out


def state_of(conn: sqlite3.Connection, job_id: int) -> str | None:
    row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row[0] if row else None
