"""Film → catalogue: the one writer. It finds or adds the film's row, takes the batches of
faces that pipeline/analyse.py makes (here, or in other processes or machines, segment by
segment) and commits them in order, each batch one transaction and one resume point."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from reelface import catalogue, workspace
from reelface.config import Config
from reelface.models.base import Detector, Embedder
from reelface.pipeline import copies, decode, duplicates, quality
from reelface.pipeline.analyse import Batch, FaceWorker
from reelface.pipeline.results import (
    ExtractError,
    Result,
    Stats,
    add_time,
    small_faces_note,
    timed,
    unreadable_note,
)
from reelface.pipeline.thumbs import thumbs_of
from reelface.workspace import Workspace

# Where a film's batches come from: (film, faces folder, last committed frame, stop, stats) →
# batches in frame order (FaceWorker.batches in this process; pipeline/segments.py for many).
Source = Callable[[decode.FilmInfo, Path, int, "threading.Event | None", Stats], Iterable[Batch]]


class Extractor:
    """Extraction for one workspace with one pair of models; the only one writing its faces.

    A context manager: leaving it waits for the last crops to be written and stops the writers.
    `source` replaces this process's worker, e.g. by segments run in parallel elsewhere.
    """

    def __init__(
        self,
        ws: Workspace,
        config: Config,
        detector: Detector,
        embedder: Embedder,
        source: Source | None = None,
    ) -> None:
        self.ws, self.detector, self.embedder = ws, detector, embedder
        self.worker = FaceWorker(ws.root, config, detector, embedder)
        self.source = source

    @property
    def config(self) -> Config:
        return self.worker.config

    @config.setter
    def config(self, value: Config) -> None:  # the importer lowers the threshold for one file
        self.worker.config = value

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for queued crop writes and stop the writer threads."""
        self.worker.close()

    # -- one film --------------------------------------------------------------------------------

    def params(self) -> dict:
        ext = self.config.extract
        return {
            "interval": ext.interval,
            "size": ext.size,
            "exact_frames": ext.exact_frames,
            "detector": [f.sha256 for f in self.detector.files],
            "embedder": [f.sha256 for f in self.embedder.files],
        }

    def run(
        self,
        source: Path,
        force: bool = False,
        progress: Callable[[int, Stats], None] | None = None,
        stop: threading.Event | None = None,
        info: decode.FilmInfo | None = None,
    ) -> Result:
        """Extract one film or image folder into the workspace, resuming where a run stopped."""
        info = info or decode.probe(source)
        conn = catalogue.open_catalogue(self.ws.catalogue_path)
        try:
            return self._run(conn, info, force, progress, stop)
        finally:
            conn.close()

    def _prepare(self, conn, info: decode.FilmInfo, force: bool) -> tuple[int, str, int, bool]:
        """Film row id, slug, last frame committed, and whether it is already done."""
        params = self.params()
        row = catalogue.find_film(conn, info.content_hash)
        if row is None:
            slug = workspace.slugify(Path(info.path), info.content_hash)
            mark = decode.fingerprint(Path(info.path)) if info.kind == "video" else None
            return catalogue.add_film(conn, info, slug, params, mark), slug, -1, False
        film_id, slug = int(row["id"]), str(row["slug"])
        if force:
            self._reset(conn, film_id, slug, params)
            return film_id, slug, -1, False
        if json.loads(row["params"]) != params:
            raise ExtractError(
                f"{info.path} was extracted with other settings ({row['params']}); "
                "rerun with --force to extract it again with these"
            )
        return film_id, slug, int(row["last_frame"]), row["state"] == "done"

    def _reset(self, conn, film_id: int, slug: str, params: dict) -> None:
        catalogue.reset_film(conn, film_id, params)
        shutil.rmtree(self.ws.film_dir(slug) / "faces", ignore_errors=True)
        shutil.rmtree(thumbs_of(self.ws.root, f"films/{slug}/faces"), ignore_errors=True)

    def _remove_orphans(self, conn, film_id: int, faces_dir: Path) -> None:
        """Crops written after the last commit of a killed run: they will be written again."""
        known = catalogue.crop_names(conn, film_id)
        for item in faces_dir.iterdir():
            if item.name not in known:
                item.unlink(missing_ok=True)

    def _batches(self, info, faces_dir, last, stop, stats) -> Iterable[Batch]:
        if self.source is not None and info.kind == "video":
            return self.source(info, faces_dir, last, stop, stats)
        return self.worker.batches(info, faces_dir, last, stop=stop, stats=stats)

    def _run(self, conn, info, force, progress, stop) -> Result:
        t = time.perf_counter()
        film_id, slug, last, done = self._prepare(conn, info, force)
        faces_dir = self.ws.film_dir(slug) / "faces"
        stats = Stats()
        add_time(stats, "catalogue", time.perf_counter() - t)
        if done:
            return Result(film_id, slug, "skipped", faces_dir, stats)
        if not force and copies.settle(conn, film_id, None, stats.notes):  # a finished copy
            catalogue.set_film_state(conn, film_id, "done")
            return Result(film_id, slug, "duplicate", faces_dir, stats)
        try:
            faces_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ExtractError(f"cannot create {faces_dir}: {error.strerror}") from error
        self._remove_orphans(conn, film_id, faces_dir)
        catalogue.set_film_state(conn, film_id, "extracting")
        ids = (
            catalogue.model_id(conn, self.detector.files[0]),
            catalogue.model_id(conn, self.embedder.files[0]),
        )
        started = time.perf_counter()
        committed = last
        try:
            for batch in self._batches(info, faces_dir, last, stop, stats):
                if batch.last_frame <= committed:
                    continue  # a frame two segments both took: the first one's counts
                with timed(stats, "catalogue"):
                    self._commit(conn, film_id, batch, committed, ids, stats)
                committed = batch.last_frame
                stats.wall_seconds = time.perf_counter() - started
                if progress:
                    progress(batch.last_frame, stats)
        except (OSError, sqlite3.OperationalError) as error:
            message = _write_failure(error, faces_dir)
            _mark_failed(conn, film_id, message)
            raise ExtractError(message) from error
        except decode.SourceError as error:
            _mark_failed(conn, film_id, str(error))
            raise
        except BaseException as error:
            reason = f"interrupted ({type(error).__name__}); run again to resume"
            _mark_failed(conn, film_id, reason)
            raise
        total = info.frames_total
        reached = stats.frames_reached or last + 1
        copies.settle(conn, film_id, reached, stats.notes)
        if info.kind == "video" and total and reached < 0.9 * total - self.config.extract.interval:
            message = (
                f"{info.path}: decoding stopped at frame {reached} of {total} "
                "(truncated or damaged file); the faces found so far are kept"
            )
            _mark_failed(conn, film_id, message)
            raise decode.SourceError(message)
        stats.wall_seconds = time.perf_counter() - started
        note = small_faces_note(stats, self.config.extract.size, self.config.rules.max_upscale)
        if note:
            stats.notes.append(note)
        if stats.unreadable:
            stats.notes.append(unreadable_note(info.path, stats.unreadable))
        stopped = stop is not None and stop.is_set()
        if not stopped:  # near-duplicates need the whole film's faces: folded once at the end
            with timed(stats, "catalogue"):
                folded = duplicates.fold_film(conn, film_id, self.ws.root, self.config)
            stats.faces_kept = max(stats.faces_kept - folded.flagged, 0)
            stats.faces_flagged += folded.flagged
            stats.reasons.update({"duplicate": folded.marked} if folded.marked else {})
        catalogue.set_film_state(conn, film_id, "extracting" if stopped else "done")
        return Result(film_id, slug, "stopped" if stopped else "done", faces_dir, stats)

    @staticmethod
    def _commit(conn, film_id: int, batch: Batch, after: int, ids, stats: Stats) -> None:
        """One batch in one transaction, then its counts in the run's stats. Frames up to
        `after` were committed already (the last frame of a segment may open the next one)."""
        small = batch.small
        records = [r for r in batch.records if r.frame > after]
        sampled = sum(1 for i in batch.frames if i > after)
        catalogue.commit_batch(conn, film_id, records, batch.last_frame, sampled, small.count, *ids)
        for record in records:
            stats.faces_kept += record.passed
            stats.faces_flagged += not record.passed
            stats.reasons.update(quality.reason_keys(record.reasons))
        stats.faces_small += small.count
        if small.upscale < stats.small_upscale:
            stats.small_upscale, stats.small_width = small.upscale, small.width
        stats.unreadable += batch.unreadable
        stats.frames_sampled += sampled
        stats.frames_reached = batch.last_frame + 1


def _mark_failed(conn, film_id: int, message: str) -> None:
    # The disk may be full; the row then stays "extracting", which resumes the same way.
    with contextlib.suppress(sqlite3.Error):
        catalogue.set_film_state(conn, film_id, "failed", message)


def _write_failure(error: Exception, folder: Path) -> str:
    code = getattr(error, "errno", None)
    if code == errno.ENOSPC or "full" in str(error):
        return f"disk full while writing to {folder.parent}: free space and run the same command"
    if code in (errno.EACCES, errno.EROFS, errno.EPERM):
        return f"cannot write to {folder}: {error.strerror} (check permissions)"
    return f"cannot write to {folder}: {getattr(error, 'strerror', None) or error}"
