"""The work of each job kind in this process: extraction with shared models, the rest by task."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reelface import catalogue
from reelface import config as config_mod
from reelface.config import Config
from reelface.jobs import Job, tasks
from reelface.pipeline import decode
from reelface.pipeline.extract import Extractor, Result, Source
from reelface.workspace import Workspace

# progress(fraction, film_id or None)
Report = Callable[[float, "int | None"], None]
# note(line): one line for the job's log (the extraction summary, notes of the task)
Note = Callable[[str], None]


@dataclass
class Models:
    """Detector and embedder per GPU (None = the default device), loaded once, shared by jobs."""

    config: Config
    lock: threading.Lock = field(default_factory=threading.Lock)
    pairs: dict[int | None, tuple] = field(default_factory=dict)

    def get(self, gpu: int | None = None) -> tuple:
        with self.lock:
            if gpu not in self.pairs:
                from reelface.models import registry

                self.pairs[gpu] = registry.load(self.config, device=gpu)
            return self.pairs[gpu]


def film_source(ws: Workspace, job: Job) -> Path:
    """The film an extraction job reads: params' path, relative to the workspace or absolute."""
    return ws.root / job.params["path"]


def film_settings(job: Job) -> tuple[config_mod.Settings, list[Path]]:
    """The settings files of the film where it was dropped (read when the job runs, so a fixed
    file counts at `jobs retry`); none for films queued by hand."""
    dropped, inbox = job.params.get("dropped"), job.params.get("inbox")
    if not dropped or not inbox:
        return {}, []
    return config_mod.film_settings(Path(dropped), top=Path(inbox))


def film_id_for(ws: Workspace, content_hash: str) -> int | None:
    conn = catalogue.open_catalogue(ws.catalogue_path)
    try:
        row = catalogue.find_film(conn, content_hash)
        return int(row["id"]) if row else None
    finally:
        conn.close()


def extract(
    ws: Workspace,
    config: Config,
    models: Models,
    job: Job,
    stop: threading.Event,
    report: Report,
    gpu: int | None = None,
    note: Note | None = None,
    source: Source | None = None,
) -> str:
    """Extract one film, resuming from its last committed batch: 'done' or 'stopped'.

    This process is the film's one writer; `source` runs its segments elsewhere (Ray)."""
    path = film_source(ws, job)
    settings, used = film_settings(job)
    config = config_mod.with_settings(config, settings)
    info = decode.probe(path)
    detector, embedder = models.get(gpu)
    total = info.frames_total or 0
    last = [0.0]
    film_id: list[int | None] = [None]

    def progress(frame: int, _stats) -> None:
        now = time.monotonic()
        if now - last[0] < 1.0:  # one catalogue write a second is plenty for a progress bar
            return
        last[0] = now
        if film_id[0] is None:
            film_id[0] = film_id_for(ws, info.content_hash)
        report((frame + 1) / total if total else 0.0, film_id[0])

    with Extractor(ws, config, detector, embedder, source=source) as extractor:
        result = extractor.run(path, progress=progress, stop=stop, info=info)
    if result.state == "stopped":
        return "stopped"
    if note is not None:
        if used:
            note(config_mod.describe_settings(settings, used))
        note(summary(result))
        for line in result.stats.notes:  # e.g. every face too small, and the --size to use
            note(line)
    report(1.0, result.film_id)
    return "done"


def summary(result: Result) -> str:
    """The extraction summary line of a job's log: the counts the CLI's table shows."""
    s = result.stats
    return (
        f"{result.slug}: {s.frames_sampled} frames, {s.faces_kept} passed the rules, "
        f"{s.faces_flagged} flagged, {s.faces_small} too small"
    )


def other(
    ws: Workspace,
    job: Job,
    stop: threading.Event,
    report: Report,
    gpu: int | None = None,
    note: Note | None = None,
) -> str:
    """Clustering, export, training, evaluation: the core task of the job's kind."""
    del stop  # these tasks run to the end; training checkpoints as it goes
    result = tasks.run(
        job.kind, ws, dict(job.params), report=lambda share: report(share, None), gpu=gpu
    )
    if note is not None and isinstance(result, dict):
        if "identities" in result:
            note(
                f"{len(result['identities'])} identities from {result.get('faces', 0)} faces, "
                f"{result.get('unsorted', 0)} unsorted"
            )
        if result.get("note"):
            note(str(result["note"]))
    return "done"
