"""What `reelface daemon status` reads besides the catalogue: the inbox's failed films, jobs a
stopped daemon left running, and the running daemon's Ray workers."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from reelface import jobs
from reelface.workspace import Workspace


def ray_workers(ws: Workspace) -> list[str]:
    """The running daemon's Ray workers, a line each (host, pid, models), if it uses Ray."""
    from .ray_backend import WORKERS_FILE

    with contextlib.suppress(OSError, ValueError):
        return list(json.loads((ws.root / "logs" / WORKERS_FILE).read_text()))
    return []


def interrupted(job: jobs.Job, max_attempts: int) -> str:
    """What the next start does with a job a stopped daemon left running (jobs.recover)."""
    end = "it resumes at the next `reelface daemon start`"
    if job.attempts >= max_attempts:  # as jobs.recover decides
        end = f"tried {job.attempts} times: the next start fails it (`reelface jobs retry ID`)"
    label = job.params.get("source") or job.label()
    return f"job {job.id} ({job.kind} {label}) was running when the daemon stopped; {end}"


def inbox_failures(root: Path) -> list[tuple[str, str]]:
    """Films in the inbox's failed/ folder, newest first, with their reason notes' one line."""
    from .inbox import FAILED, REASON_SUFFIX, reason_path

    found = []
    for film in (root / FAILED).rglob("*"):
        if film.name.endswith(REASON_SUFFIX) or film.name.startswith(".") or not film.is_file():
            continue
        note, lines = reason_path(film), ["", "no reason note"]
        with contextlib.suppress(OSError, UnicodeDecodeError):
            lines = note.read_text().splitlines() + [""]
        when = (note if note.exists() else film).stat().st_mtime
        found.append((when, str(film.relative_to(root / FAILED)), lines[1]))
    return [(name, why) for _, name, why in sorted(found, reverse=True)]
