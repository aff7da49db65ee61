"""Crop writers and the embedder yield to the decoder; the rest of the process keeps its nice."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from reelface.pipeline import priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_only_the_pool_threads_become_nicer() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    with ThreadPoolExecutor(1, initializer=priority.background_thread) as pool:
        inside = pool.submit(_nice).result()
    with ThreadPoolExecutor(1) as pool:
        plain = pool.submit(_nice).result()  # threads made afterwards inherit nothing from it
    assert inside == min(19, before + priority.BACKGROUND_NICE)
    assert _nice() == before == plain
    assert os.getpriority(os.PRIO_PROCESS, 0) == before
