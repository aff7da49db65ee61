"""Frames decoded ahead on their own thread and handed on in detection batches."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator

from reelface.pipeline import decode
from reelface.pipeline.results import Stats, add_time


def batches_of(
    frames: Iterable[decode.Frame], size: int, stop: threading.Event | None
) -> Iterator[list[decode.Frame]]:
    """Frames in lists of `size`, the last one shorter; ends early once `stop` is set."""
    batch: list[decode.Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
            if stop is not None and stop.is_set():
                return
    if batch:
        yield batch


def read_ahead(frames: Iterator[decode.Frame], stats: Stats, batch: int) -> Iterator[decode.Frame]:
    """`frames` produced on a background thread, two batches ahead of the consumer."""
    feed: queue.Queue = queue.Queue(maxsize=2 * batch)
    done = object()
    halt = threading.Event()

    def produce() -> None:
        try:
            t = time.perf_counter()
            for frame in frames:
                seconds = time.perf_counter() - t
                stats.decode_seconds += seconds
                add_time(stats, "decode", seconds)
                while not halt.is_set():
                    try:
                        feed.put(frame, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if halt.is_set():
                    return
                t = time.perf_counter()
            feed.put(done)
        except Exception as error:  # handed to the consumer, which raises it
            feed.put(decode.SourceError(str(error)))

    thread = threading.Thread(target=produce, name="decode", daemon=True)
    thread.start()
    try:
        while (item := feed.get()) is not done:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        halt.set()
        thread.join(timeout=5)
