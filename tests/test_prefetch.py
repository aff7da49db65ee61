"""Frames handed from the decoding thread to detection: in order, none lost, batches bounded."""

from __future__ import annotations

import threading
import time

import pytest

from reelface.pipeline.decode import SourceError
from reelface.pipeline.prefetch import read_ahead
from reelface.pipeline.results import Stats


def _slow(count: int, fail_at: int | None = None, pause: float = 0.002):
    for index in range(count):
        if index == fail_at:
            raise ValueError("corrupt packet")
        time.sleep(pause)
        yield index


def test_every_frame_once_in_order_and_no_batch_larger_than_asked() -> None:
    batches = list(read_ahead(_slow(50), Stats(), 8))
    assert [f for b in batches for f in b] == list(range(50))
    assert all(1 <= len(b) <= 8 for b in batches)


def test_detection_gets_what_is_ready_instead_of_waiting_for_a_full_batch() -> None:
    # A slow consumer finds full batches waiting; the first batch never waits for eight frames.
    batches = []
    for batch in read_ahead(_slow(40, pause=0.01), Stats(), 8):
        batches.append(batch)
        time.sleep(0.2 if len(batches) > 1 else 0)
    assert len(batches[0]) < 8
    assert max(len(b) for b in batches) == 8
    assert [f for b in batches for f in b] == list(range(40))


def test_frames_before_a_decoding_error_are_handed_on_then_the_error() -> None:
    seen = []
    with pytest.raises(SourceError, match="corrupt packet"):
        for batch in read_ahead(_slow(30, fail_at=17), Stats(), 8):
            seen.extend(batch)
    assert seen == list(range(17))


def test_stop_ends_after_the_batch_in_hand() -> None:
    stop = threading.Event()
    seen = []
    for batch in read_ahead(_slow(100), Stats(), 4, stop):
        seen.extend(batch)
        stop.set()
    assert seen == list(range(len(seen))) and 1 <= len(seen) <= 4
