"""A film cut into segments that run in parallel, merged back into the batches of one run.

Sampling takes the multiples of the interval (decode.video_frames), so a segment that owns the
multiples from B up to E samples exactly what one run over the film samples there; a frame that
two multiples share across a cut is committed once (Extractor._commit). Segments start at
keyframes, so no worker decodes much that another decodes too. The workers here are processes
of this machine; daemon/ray_backend.py runs the same segments on a Ray cluster.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import av

from reelface.config import Config
from reelface.pipeline import decode
from reelface.pipeline.analyse import Batch, FaceWorker
from reelface.pipeline.results import ExtractError, Stats

# Sampled frames per segment: small enough that a killed worker loses little and a stop comes
# soon, large enough that seeking to the segment's keyframe is a small share of its decoding.
SAMPLES_PER_SEGMENT = 120
RETRIES = 3  # a segment whose worker died is run again this often before the film fails


@dataclass(frozen=True)
class Segment:
    """The multiples of the interval after `after` and before `until` (None: to the end)."""

    index: int
    after: int
    until: int | None


def keyframes(path: Path) -> list[int]:
    """Frame indices of the video's keyframes, read from the packets (nothing decoded)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        start, base = stream.start_time or 0, stream.time_base
        return sorted(
            round(float((p.pts - start) * base) * fps)
            for p in container.demux(stream)
            if p.is_keyframe and p.pts is not None and p.size
        )


def plan(info: decode.FilmInfo, after: int, interval: int, per: int = SAMPLES_PER_SEGMENT):
    """Segments covering the film after frame `after`, cut at keyframes about `per` samples
    apart (one segment when the film is short or has no keyframe to cut at)."""
    total = info.frames_total or 0
    span = per * interval
    cuts: list[int] = []
    for key in keyframes(Path(info.path)):
        far = key > after + 1 and key - (cuts[-1] if cuts else after + 1) >= span
        if far and (not total or total - key >= span // 2):  # and no sliver at the end
            cuts.append(key)
    bounds = [after + 1, *cuts]
    return [
        Segment(i, start - 1, bounds[i + 1] if i + 1 < len(bounds) else None)
        for i, start in enumerate(bounds)
    ]


def in_order(
    done: Iterable[tuple[int, list[Batch]]], count: int, stop: threading.Event | None = None
) -> Iterator[Batch]:
    """Batches of segments that finish in any order, released in segment order."""
    held: dict[int, list[Batch]] = {}
    following = 0
    for index, batches in done:
        held[index] = batches
        while following in held:
            yield from held.pop(following)
            following += 1
    if following != count and not (stop is not None and stop.is_set()):
        raise ExtractError(f"segments {sorted(set(range(following, count)))} never finished")


# -- processes of this machine ---------------------------------------------------------------

_worker: FaceWorker | None = None


def _start(root: str, config: Config, pack: str | None) -> None:
    """Each process loads the models once and keeps them for every segment it runs."""
    global _worker
    from reelface.models import registry

    detector, embedder = registry.load(config, pack)
    _worker = FaceWorker(Path(root), config, detector, embedder)


def _run_segment(info: decode.FilmInfo, faces_dir: str, after: int, until: int | None):
    assert _worker is not None, "segment run outside a started worker process"
    stats = Stats()
    batches = list(_worker.batches(info, Path(faces_dir), after, until, stats=stats))
    return batches, stats


def _add_timings(stats: Stats, part: Stats) -> None:
    for name in ("decode_seconds", "detect_seconds", "write_seconds"):
        setattr(stats, name, getattr(stats, name) + getattr(part, name))
    stats.stages.update(part.stages)
    stats.notes += [n for n in part.notes if n not in stats.notes]


class Segmented:
    """An Extractor source that plans a film's segments and merges what `_results` yields."""

    interval: int
    per: int
    where: str  # for the note: "on 2 processes", "on the Ray cluster"

    def __call__(
        self,
        info: decode.FilmInfo,
        faces_dir: Path,
        last: int,
        stop: threading.Event | None,
        stats: Stats,
    ) -> Iterator[Batch]:
        segments = plan(info, last, self.interval, self.per)
        stats.notes.append(f"{len(segments)} segment(s) {self.where}")
        return in_order(self._results(info, faces_dir, segments, stop, stats), len(segments), stop)

    def _results(
        self, info, faces_dir: Path, segments: list[Segment], stop, stats: Stats
    ) -> Iterator[tuple[int, list[Batch]]]:
        raise NotImplementedError


class ProcessSegments(Segmented):
    """The film's segments on `workers` processes of this machine."""

    def __init__(
        self,
        root: Path,
        config: Config,
        pack: str | None,
        workers: int,
        per: int = SAMPLES_PER_SEGMENT,
    ) -> None:
        self.args = (str(root), config, pack)
        self.workers, self.per, self.interval = workers, per, config.extract.interval
        self.where = f"on {workers} processes"
        # spawn: a forked copy of a process running onnxruntime's and PyAV's threads can hang.
        self.context = multiprocessing.get_context("spawn")

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers, mp_context=self.context, initializer=_start, initargs=self.args
        )

    def _results(self, info, faces_dir, segments: list[Segment], stop, stats):
        todo, tries = list(segments), dict.fromkeys(range(len(segments)), 0)
        while todo:
            pool = self._pool()
            running: dict[Future, Segment] = {}
            try:
                for segment in todo:
                    running[pool.submit(_run_segment, info, str(faces_dir), segment.after,
                                        segment.until)] = segment  # fmt: skip
                while running:
                    finished, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                    if stop is not None and stop.is_set():
                        return  # what was committed stays; the rest is done at the next run
                    for future in finished:
                        segment = running.pop(future)
                        batches, part = future.result()
                        _add_timings(stats, part)
                        todo.remove(segment)
                        yield segment.index, batches
            except BrokenProcessPool:
                # A worker died (killed, out of memory): its segments and the others still
                # running go to a new pool; the crops they wrote are rewritten the same.
                stats.notes.append(
                    f"a worker process died; {len(running)} segment(s) run again on a new one"
                )
                for segment in running.values():
                    tries[segment.index] += 1
                    if tries[segment.index] > RETRIES:
                        raise ExtractError(
                            f"{info.path}: the worker of frames {segment.after + 1}–"
                            f"{segment.until or 'end'} died {RETRIES + 1} times; see the "
                            "system log (out of memory?) and run again to resume"
                        ) from None
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
