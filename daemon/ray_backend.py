"""Extraction jobs as Ray tasks: any node of an existing cluster, the workspace on shared storage.

The task opens the workspace by path, loads its models and runs the same resumable Extractor, so
its rows land in the same catalogue. `ray` is an optional extra: `pip install 'reelface[ray]'`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelface.errors import ReelfaceError
from reelface.jobs import Job
from reelface.workspace import Workspace

from .work import Report, film_id_for, film_source


class RayUnavailable(ReelfaceError, RuntimeError):
    """Ray is not installed or the cluster cannot be reached; the message names the fix."""


def _extract_task(ws_root: str, rel_path: str) -> tuple[str, int | None, str | None, list[str]]:
    """Runs on a Ray worker: ('done' | 'stopped' | 'failed', film id, error, summary notes)."""
    from reelface import errors
    from reelface.models import registry
    from reelface.pipeline.extract import Extractor
    from reelface.workspace import Workspace

    from .settings import core_config

    ws = Workspace(Path(ws_root))
    config = core_config(ws)
    try:
        detector, embedder = registry.load(config)
        with Extractor(ws, config, detector, embedder) as extractor:
            result = extractor.run(ws.root / rel_path)
    except Exception as error:
        if not errors.is_own(error):
            raise
        return "failed", None, errors.one_line(error), []
    state = "stopped" if result.state == "stopped" else "done"
    return state, result.film_id, None, result.stats.notes


@dataclass
class RayBackend:
    """One connection to a Ray cluster ('local' starts a private one on this machine)."""

    address: str
    remote: Any = None

    def connect(self) -> str:
        try:
            import ray
        except ImportError:
            raise RayUnavailable(
                "--ray needs Ray: pip install 'reelface[ray]' (or run without --ray)"
            ) from None
        try:
            if self.address == "local":
                ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            else:
                ray.init(address=self.address, log_to_driver=False, ignore_reinit_error=True)
        except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError…
            raise RayUnavailable(
                f"cannot join the Ray cluster at {self.address}: {error} "
                "(start it with `ray start --head`, or give its address as HOST:PORT)"
            ) from error
        self.remote = ray.remote(max_retries=0)(_extract_task)
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        return f"Ray {ray.__version__} at {self.address}: {nodes} node(s)"

    def extract(
        self,
        ws: Workspace,
        job: Job,
        stop: threading.Event,
        report: Report,
        note: Callable[[str], None] | None = None,
    ) -> str:
        """Submit, wait, report progress from the catalogue; cancel the task on stop."""
        import ray

        from reelface.pipeline.extract import ExtractError

        ref = self.remote.remote(str(ws.root), str(film_source(ws, job).relative_to(ws.root)))
        while True:
            ready, _ = ray.wait([ref], timeout=1.0)
            if ready:
                state, film_id, error, notes = ray.get(ref)
                if state == "failed":
                    raise ExtractError(error)
                for line in notes if note is not None else ():
                    note(line)
                if state == "done":
                    report(1.0, film_id)
                return state
            film_id = film_id_for(ws, job.params.get("hash", ""))
            report(_progress(ws, film_id), film_id)
            if stop.is_set():
                # The task gets KeyboardInterrupt between batches' work; its film stays resumable.
                ray.cancel(ref)
                with contextlib.suppress(Exception):
                    ray.get(ref, timeout=60)
                return "stopped"

    def close(self) -> None:
        try:
            import ray

            ray.shutdown()
        except Exception:
            pass


def _progress(ws: Workspace, film_id: int | None) -> float:
    if film_id is None:
        return 0.0
    from reelface import catalogue

    conn = catalogue.open_catalogue(ws.catalogue_path)
    try:
        row = conn.execute(
            "SELECT last_frame, frames_total FROM films WHERE id = ?", (film_id,)
        ).fetchone()
    finally:
        conn.close()
    return (row[0] + 1) / row[1] if row and row[1] else 0.0
