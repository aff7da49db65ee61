"""Film → aligned faces: decode, detect (coarse, refined), align, measure, embed, write, commit."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from reelface import catalogue, io, workspace
from reelface.config import Config
from reelface.models.base import Detection, Detector, Embedder
from reelface.pipeline import align, decode, detect, quality
from reelface.pipeline.prefetch import batches_of, read_ahead
from reelface.pipeline.results import (
    ExtractError,
    Result,
    Stats,
    TooSmall,
    crop_name,
    small_faces_note,
)
from reelface.pipeline.thumbs import thumb_path, thumbs_of, write_thumb
from reelface.workspace import Workspace

# A coarse detection may be off by this much in scale; faces that might still pass are refined.
COARSE_SLACK = 1.3


class Extractor:
    """Runs the extraction pipeline for one workspace with one pair of models.

    A context manager: leaving it waits for the last crops to be written and stops the writers.
    """

    def __init__(
        self, ws: Workspace, config: Config, detector: Detector, embedder: Embedder
    ) -> None:
        self.ws, self.config, self.detector, self.embedder = ws, config, detector, embedder
        self._writer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="png")

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for queued crop writes and stop the writer threads."""
        self._writer.shutdown(wait=True)

    # -- detection ---------------------------------------------------------------------------

    def find_faces(self, frames: list[decode.Frame]) -> tuple[list[list[Detection]], TooSmall]:
        """Faces large enough to keep in each frame, refined, and those too small."""
        ext, rules = self.config.extract, self.config.rules
        small = TooSmall()
        candidates: list[tuple[int, Detection]] = []
        out: list[list[Detection]] = [[] for _ in frames]
        for index, found in enumerate(self._coarse(frames)):
            for det in found:
                matrix = align.align_matrix(det.landmarks, align.FFHQ, ext.size)
                upscale = align.scale_of(matrix)
                if upscale > rules.max_upscale * COARSE_SLACK:
                    small.add(upscale, det.box)
                else:
                    # Always refined: skipping it for faces already large in the coarse input
                    # saved 13 % of the time on close-ups but cost 18 % of alignment accuracy.
                    candidates.append((index, det))
        if not candidates:
            return out, small
        refined = detect.refine(
            self.detector,
            [frames[i].rgb for i, _ in candidates],
            [face for _, face in candidates],
            ext.refine_size,
            ext.threshold,
        )
        for (index, _), face in zip(candidates, refined, strict=True):
            out[index].append(face)
        return out, small

    def _coarse(self, frames: list[decode.Frame]) -> list[list[Detection]]:
        """The coarse pass on each frame's preview, mapped back to frame pixels."""
        found: list[list[Detection]] = [[] for _ in frames]
        groups: dict[int, list[int]] = {}
        for index, frame in enumerate(frames):
            groups.setdefault(max(frame.preview.shape[:2]), []).append(index)
        for side, indices in groups.items():
            previews = [frames[i].preview for i in indices]
            coarse = self.detector.detect(previews, side, self.config.extract.threshold)
            for index, faces in zip(indices, coarse, strict=True):
                (height, width), preview = frames[index].shape, frames[index].preview
                scale = np.array([width / preview.shape[1], height / preview.shape[0]])
                found[index] = [detect.scaled(face, scale) for face in faces]
        return found

    # -- one batch -----------------------------------------------------------------------------

    def analyse(
        self, frames: list[decode.Frame], faces_dir: Path, slug: str
    ) -> tuple[list[catalogue.FaceRecord], list[tuple[Path, np.ndarray, np.ndarray]], TooSmall]:
        """Records of a batch, the crops to write (path, crop, preview) and the too-small faces."""
        ext, rules = self.config.extract, self.config.rules
        usable = [f for f in frames if not f.empty]
        found, small = self.find_faces(usable) if usable else ([], TooSmall())
        records: list[catalogue.FaceRecord] = []
        writes = []
        chips = []
        template = self.embedder.template
        for frame, detections in zip(usable, found, strict=True):
            # Left to right, so slot numbers are stable between runs.
            for det in sorted(detections, key=lambda d: float(d.box[0] + d.box[2])):
                matrix = align.align_matrix(det.landmarks, align.FFHQ, ext.size)
                enlargement = align.scale_of(matrix)
                if enlargement > rules.max_upscale:
                    small.add(enlargement, det.box)
                    continue
                # Bicubic keeps edges when the face is enlarged (up to 1.43×); when it is
                # reduced, both sample the source finer than its detail and look alike, and
                # bilinear costs a third (3.5 against 10 ms at 1024 px here).
                crop = align.warp(frame.rgb, matrix, ext.size, fine=enlargement > 1)
                analysis, to_analysis = self._analysis_crop(frame.rgb, det, crop)
                measures = quality.measure(
                    det.box,
                    det.score,
                    det.landmarks,
                    matrix,
                    ext.size,
                    frame.shape,
                    cv2.cvtColor(analysis, cv2.COLOR_RGB2GRAY),
                )
                reasons = quality.reasons(measures, rules)
                slot = sum(1 for r in records if r.frame == frame.index)
                path = faces_dir / crop_name(frame.index, slot)
                # The embedder's own alignment, resampled from the analysis crop, which holds
                # the whole of its (tighter) framing.
                chip_m = align.align_matrix(det.landmarks, template, template.size)
                chip_m = align.compose(chip_m, align.invert(to_analysis))
                chips.append(align.warp_smooth(analysis, chip_m, template.size))
                writes.append((path, crop, analysis))
                records.append(
                    catalogue.FaceRecord(
                        frame=frame.index,
                        slot=slot,
                        pts=frame.pts,
                        source=frame.source,
                        box=det.box,
                        landmarks=det.landmarks,
                        landmarks_crop=align.apply(matrix, det.landmarks),
                        matrix=matrix,
                        crop_size=ext.size,
                        crop_path=str(path.relative_to(self.ws.root)),
                        measures=measures.as_dict(),
                        reasons=reasons,
                        passed=quality.passes(reasons),
                        embedding=np.zeros(0, np.float32),
                    )
                )
        if chips:
            vectors = self.embedder.embed(np.stack(chips))
            for record, vector in zip(records, vectors, strict=True):
                record.embedding = vector
        return records, writes, small

    def _analysis_crop(
        self, rgb: np.ndarray, det: Detection, crop: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The 256 px FFHQ analysis crop and its matrix; shrunk from the output crop when larger."""
        size = quality.ANALYSIS.size
        matrix = align.align_matrix(det.landmarks, quality.ANALYSIS, size)
        if crop.shape[0] < size:  # never enlarge a small output: sharpness must not depend on it
            return align.warp_smooth(rgb, matrix, size), matrix
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA), matrix

    def _write(self, path: Path, crop: np.ndarray, analysis: np.ndarray) -> None:
        # The preview first: a crop on disk always has its thumbnail.
        write_thumb(thumb_path(self.ws.root, str(path.relative_to(self.ws.root))), analysis)
        io.atomic_write(path, io.encode_png_fast(crop, self.config.extract.png_compression))

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
            return catalogue.add_film(conn, info, slug, params), slug, -1, False
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

    def _run(self, conn, info, force, progress, stop) -> Result:
        film_id, slug, last, done = self._prepare(conn, info, force)
        faces_dir = self.ws.film_dir(slug) / "faces"
        stats = Stats()
        if done:
            return Result(film_id, slug, "skipped", faces_dir, stats)
        try:
            faces_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ExtractError(f"cannot create {faces_dir}: {error.strerror}") from error
        self._remove_orphans(conn, film_id, faces_dir)
        catalogue.set_film_state(conn, film_id, "extracting")
        detector_id = catalogue.model_id(conn, self.detector.files[0])
        embedder_id = catalogue.model_id(conn, self.embedder.files[0])
        started = time.perf_counter()
        pending: tuple[list, list[Future], int, int, TooSmall] | None = None

        def flush() -> None:
            nonlocal pending
            if pending is None:
                return
            records, futures, last_frame, sampled, small = pending
            pending = None
            t = time.perf_counter()
            for future in futures:
                future.result()  # a failed write raises here, before anything is committed
            stats.write_seconds += time.perf_counter() - t
            catalogue.commit_batch(
                conn, film_id, records, last_frame, sampled, small.count, detector_id, embedder_id
            )
            for record in records:
                stats.faces_kept += record.passed
                stats.faces_flagged += not record.passed
                stats.reasons.update(quality.reason_keys(record.reasons))
            stats.faces_small += small.count
            if small.upscale < stats.small_upscale:
                stats.small_upscale, stats.small_width = small.upscale, small.width

        try:
            for batch in self._batches(info, last, stats, stop):
                t = time.perf_counter()
                records, writes, small = self.analyse(batch, faces_dir, slug)
                stats.detect_seconds += time.perf_counter() - t
                flush()  # the previous batch's crops were written while this one was analysed
                futures = [self._writer.submit(self._write, *w) for w in writes]
                pending = (records, futures, batch[-1].index, len(batch), small)
                stats.frames_sampled += len(batch)
                stats.frames_reached = batch[-1].index + 1
                stats.wall_seconds = time.perf_counter() - started
                if progress:
                    progress(batch[-1].index, stats)
            flush()
            if progress and stats.frames_sampled:
                progress(stats.frames_reached - 1, stats)
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
        stopped = stop is not None and stop.is_set()
        catalogue.set_film_state(conn, film_id, "extracting" if stopped else "done")
        return Result(film_id, slug, "stopped" if stopped else "done", faces_dir, stats)

    def _batches(
        self, info: decode.FilmInfo, last: int, stats: Stats, stop: threading.Event | None
    ) -> Iterator[list[decode.Frame]]:
        """Sampled frames in batches, decoded while the previous batches are analysed."""
        ext, path = self.config.extract, Path(info.path)

        def side(shape: tuple[int, int]) -> int:
            return detect.coarse_size(self.config, shape)

        if info.kind == "images":
            frames = decode.image_frames(path, last + 1, side)
        else:
            hwaccel = ext.hwaccel
            problem = decode.hwaccel_problem(path, hwaccel) if hwaccel else None
            if problem:
                stats.notes.append(f"hardware decoding off: {problem}; decoding on the CPU")
                hwaccel = ""
            frames = decode.video_frames(
                path, ext.interval, side, last, ext.exact_frames, ext.decode_threading, hwaccel
            )
        try:
            yield from batches_of(read_ahead(frames, stats, ext.batch), ext.batch, stop)
        except decode.SourceError as error:
            raise decode.SourceError(f"{path}: decoding failed ({error})") from None


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
