"""The work of extraction that needs no catalogue: decode, detect (coarse, refined), align,
measure, embed and write crops, batch by batch, for a whole film or one segment of it.

Whoever runs it — the Extractor in this process, a process of a pool, a Ray worker — hands the
batches to the one writer (pipeline/extract.py), which commits them in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from reelface import catalogue, io
from reelface.config import Config
from reelface.models.base import Detection, Detector, Embedder
from reelface.pipeline import align, decode, detect, heap, priority, quality
from reelface.pipeline.prefetch import read_ahead
from reelface.pipeline.results import Stats, TooSmall, crop_name, timed
from reelface.pipeline.thumbs import thumb_path, write_thumb

# A coarse detection may be off by this much in scale; faces that might still pass are refined.
COARSE_SLACK = 1.3


@dataclass
class Batch:
    """One batch's faces, their crops already on disk: what the writer commits as one step."""

    records: list[catalogue.FaceRecord]
    frames: list[int]  # the sampled frames' indices; the last is the resume point once committed
    small: TooSmall
    unreadable: list[str] = field(default_factory=list)  # image files that did not decode

    @property
    def last_frame(self) -> int:
        return self.frames[-1]


class FaceWorker:
    """Detector, embedder and crop writers for one workspace's files; opens no catalogue.

    The thread that asks for batches detects and aligns; each face's measures and files are
    made on the writer threads, and a batch's embeddings on a thread of their own, while it goes
    on to the next batch. Done in line, they left a 2-core machine 15 % idle on close-ups and
    the run took 4–8 % longer (bench/extract.py, close-up-heavy).

    A context manager: leaving it waits for the last crops to be written and stops the writers.
    """

    def __init__(self, root: Path, config: Config, detector: Detector, embedder: Embedder) -> None:
        self.root, self.config, self.detector, self.embedder = root, config, detector, embedder
        heap.keep_freed_blocks()
        # Both can wait for the decoder, the critical path (pipeline/priority.py).
        self._writer = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="png", initializer=priority.background_thread
        )
        self._embedding = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="embed", initializer=priority.background_thread
        )

    def __enter__(self) -> FaceWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for queued crop writes and stop the writer threads."""
        self._embedding.shutdown(wait=True)
        self._writer.shutdown(wait=True)

    def batches(
        self,
        info: decode.FilmInfo,
        faces_dir: Path,
        after: int,
        until: int | None = None,
        stop: threading.Event | None = None,
        stats: Stats | None = None,
    ) -> Iterator[Batch]:
        """The batches of frames after `after` (up to the multiple `until`), each yielded once its
        faces are measured, embedded and written; the next batch is analysed meanwhile."""
        stats = stats if stats is not None else Stats()
        pending: tuple[list, list[Future], list[int], TooSmall, list[str]] | None = None

        def finish() -> Batch:
            records, futures, indices, small, unreadable = pending
            t = time.perf_counter()
            for future in futures:
                future.result()  # a failure raises here, before anything is committed
            stats.write_seconds += time.perf_counter() - t
            return Batch(records, indices, small, unreadable)

        slug = faces_dir.parent.name
        for frames in self._frames(info, after, until, stats, stop):
            t = time.perf_counter()
            records, futures, small = self.analyse(frames, faces_dir, slug, stats)
            stats.detect_seconds += time.perf_counter() - t
            if pending is not None:
                yield finish()
            unreadable = [str(f.source) for f in frames if f.empty and f.source]
            pending = (records, futures, [f.index for f in frames], small, unreadable)
        if pending is not None:
            yield finish()

    # -- detection ---------------------------------------------------------------------------

    def find_faces(
        self, frames: list[decode.Frame], stats: Stats | None = None
    ) -> tuple[list[list[Detection]], TooSmall]:
        """Faces large enough to keep in each frame, refined, and those too small."""
        ext, rules = self.config.extract, self.config.rules
        stats = stats if stats is not None else Stats()
        small = TooSmall()
        candidates: list[tuple[int, Detection]] = []
        out: list[list[Detection]] = [[] for _ in frames]
        with timed(stats, "coarse detect"):
            coarse = self._coarse(frames)
        for index, found in enumerate(coarse):
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
        with timed(stats, "decode"):  # the full frame, made only for frames with a face
            images = [frames[i].pixels for i, _ in candidates]
        with timed(stats, "refine"):
            refined = detect.refine(
                self.detector,
                images,
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
        self, frames: list[decode.Frame], faces_dir: Path, slug: str, stats: Stats | None = None
    ) -> tuple[list[catalogue.FaceRecord], list[Future], TooSmall]:
        """Records of a batch, the work still running to complete them (measures, embeddings,
        files: the records are whole once it is done) and the too-small faces."""
        ext, rules = self.config.extract, self.config.rules
        stats = stats if stats is not None else Stats()
        usable = [f for f in frames if not f.empty]
        found, small = self.find_faces(usable, stats) if usable else ([], TooSmall())
        records: list[catalogue.FaceRecord] = []
        futures: list[Future] = []
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
                with timed(stats, "align"):
                    crop = align.warp(frame.pixels, matrix, ext.size, fine=enlargement > 1)
                    analysis, to_analysis = self._analysis_crop(frame.pixels, det, crop)
                    # The embedder's own alignment, resampled from the analysis crop, which
                    # holds the whole of its (tighter) framing.
                    chip_m = align.align_matrix(det.landmarks, template, template.size)
                    chip_m = align.compose(chip_m, align.invert(to_analysis))
                    chips.append(align.warp_smooth(analysis, chip_m, template.size))
                slot = sum(1 for r in records if r.frame == frame.index)
                path = faces_dir / crop_name(frame.index, slot)
                record = catalogue.FaceRecord(
                    frame=frame.index,
                    slot=slot,
                    pts=frame.pts,
                    source=frame.source,
                    box=det.box,
                    landmarks=det.landmarks,
                    landmarks_crop=align.apply(matrix, det.landmarks),
                    matrix=matrix,
                    crop_size=ext.size,
                    crop_path=str(path.relative_to(self.root)),
                    measures={},  # these three by _finish, on a writer thread
                    reasons=[],
                    passed=False,
                    embedding=np.zeros(0, np.float32),  # by _embed, with the batch's others
                )
                records.append(record)
                futures.append(
                    self._writer.submit(
                        self._finish, record, det, frame.shape, path, crop, analysis, stats
                    )
                )
        if chips:
            futures.append(self._embedding.submit(self._embed, records, chips, stats))
        return records, futures, small

    def _analysis_crop(
        self, pixels: np.ndarray, det: Detection, crop: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The 256 px FFHQ analysis crop and its matrix; shrunk from the output crop when larger."""
        size = quality.ANALYSIS.size
        matrix = align.align_matrix(det.landmarks, quality.ANALYSIS, size)
        if crop.shape[0] < size:  # never enlarge a small output: sharpness must not depend on it
            return align.warp_smooth(pixels, matrix, size), matrix
        return align.shrink(crop, size), matrix

    def _embed(
        self, records: list[catalogue.FaceRecord], chips: list[np.ndarray], stats: Stats
    ) -> None:
        """Each record's embedding, from its chip, in one batch."""
        with timed(stats, "embed"):
            vectors = self.embedder.embed(np.stack(chips))
        for record, vector in zip(records, vectors, strict=True):
            record.embedding = vector

    def _finish(
        self,
        record: catalogue.FaceRecord,
        det: Detection,
        frame_shape: tuple[int, int],
        path: Path,
        crop: np.ndarray,
        analysis: np.ndarray,
        stats: Stats,
    ) -> None:
        """On a writer thread: the record's measures, reasons and verdict, then its files."""
        with timed(stats, "measure"):
            measures = quality.measure(
                det.box,
                det.score,
                det.landmarks,
                record.matrix,
                record.crop_size,
                frame_shape,
                cv2.cvtColor(analysis, cv2.COLOR_RGB2GRAY),
                crop=crop,  # sharpness at the size delivered (pipeline/sharpness.py)
            )
            reasons = quality.reasons(measures, self.config.rules)
        record.measures, record.reasons = measures.as_dict(), reasons
        record.passed = quality.passes(reasons)
        self._write(path, crop, analysis, stats)

    def _write(self, path: Path, crop: np.ndarray, analysis: np.ndarray, stats: Stats) -> None:
        with timed(stats, "encode/write"):
            # The preview first: a crop on disk always has its thumbnail.
            write_thumb(thumb_path(self.root, str(path.relative_to(self.root))), analysis)
            io.atomic_write(path, io.encode_png_fast(crop, self.config.extract.png_compression))

    def _frames(
        self,
        info: decode.FilmInfo,
        last: int,
        until: int | None,
        stats: Stats,
        stop: threading.Event | None,
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
                path,
                ext.interval,
                side,
                last,
                ext.exact_frames,
                ext.decode_threading,
                hwaccel,
                until,
            )
        try:
            yield from read_ahead(frames, stats, ext.batch, stop)
        except decode.SourceError as error:
            raise decode.SourceError(f"{path}: decoding failed ({error})") from None
