"""What an extraction reports: its counters and timings, faces too small to keep, the result."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reelface.errors import ReelfaceError


class ExtractError(ReelfaceError, RuntimeError):
    """Extraction cannot go on; the message names the file and the fix."""


@dataclass
class Stats:
    """Counters and timings of one extraction run (this run only, not earlier resumed ones)."""

    frames_sampled: int = 0
    frames_reached: int = 0
    faces_kept: int = 0
    faces_flagged: int = 0
    faces_small: int = 0
    # The largest too-small face: its enlargement at this crop size and box width (frame px).
    small_upscale: float = math.inf
    small_width: float = 0.0
    reasons: Counter = field(default_factory=Counter)
    decode_seconds: float = 0.0
    detect_seconds: float = 0.0
    analyse_seconds: float = 0.0
    write_seconds: float = 0.0
    wall_seconds: float = 0.0
    # Seconds in each stage (STAGES), summed over the threads that run it, so they overlap in
    # wall time: decode and crop writing run beside the analysis.
    stages: Counter = field(default_factory=Counter)
    unreadable: list[str] = field(default_factory=list)  # image files that could not be decoded
    notes: list[str] = field(default_factory=list)  # things the user should know, one line each

    def rates(self) -> dict[str, float]:
        def per(count: float, seconds: float) -> float:
            return count / seconds if seconds > 0 else 0.0

        faces = self.faces_kept + self.faces_flagged
        return {
            "decode_frames_per_s": per(self.frames_reached, self.decode_seconds),
            "detect_frames_per_s": per(self.frames_sampled, self.detect_seconds),
            "frames_per_s": per(self.frames_sampled, self.wall_seconds),
            "faces_per_s": per(faces, self.wall_seconds),
        }


# The stages of extraction in data-flow order, as Stats.stages names them.
STAGES = (
    "decode",
    "coarse detect",
    "refine",
    "align",
    "measure",
    "embed",
    "encode/write",
    "catalogue",
)
_STAGES_LOCK = threading.Lock()  # the decoding, writing and embedding threads add to them too


def add_time(stats: Stats, stage: str, seconds: float) -> None:
    """Add `seconds` to a stage, from any thread."""
    with _STAGES_LOCK:
        stats.stages[stage] += seconds


@contextmanager
def timed(stats: Stats, stage: str) -> Iterator[None]:
    """Add the time the block takes to `stats.stages[stage]` (a microsecond's overhead)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        add_time(stats, stage, time.perf_counter() - started)


@dataclass
class TooSmall:
    """Faces dropped as too small in a batch, and the largest of them (least enlarged)."""

    count: int = 0
    upscale: float = math.inf
    width: float = 0.0

    def add(self, upscale: float, box: np.ndarray) -> None:
        self.count += 1
        if upscale < self.upscale:
            self.upscale, self.width = upscale, float(box[2] - box[0])


def size_to_keep(size: int, upscale: float, max_upscale: float) -> int:
    """The largest crop size (a multiple of 16) at which a face enlarged `upscale`× passes."""
    # The enlargement scales with the crop size; 2 % spare for the refined landmarks moving.
    return int(size * max_upscale / upscale * 0.98) // 16 * 16


def small_faces_note(stats: Stats, size: int, max_upscale: float) -> str | None:
    """When every face was too small: the largest one and the --size that would keep it."""
    if stats.faces_kept + stats.faces_flagged or not stats.faces_small:
        return None
    largest = (
        f"all {stats.faces_small} faces were too small for {size} px crops; the largest is "
        f"{stats.small_width:.0f} px wide and would be enlarged {stats.small_upscale:.1f}× "
        f"(at most {max_upscale:.2f}×)"
    )
    fits = size_to_keep(size, stats.small_upscale, max_upscale)
    if fits < 64:  # the smallest --size the CLI takes
        return f"{largest}; no --size keeps it: use a sharper source or lower --min-face"
    return f"{largest}: --size {fits} would keep it"


@dataclass(frozen=True)
class Result:
    film_id: int
    slug: str
    state: str  # done | skipped
    output: Path
    stats: Stats


def crop_name(frame: int, slot: int) -> str:
    return f"{frame:07d}_{slot}.png"


def unreadable_note(folder: str, names: list[str], shown: int = 5) -> str:
    """The image files of a folder that could not be decoded, named (the first few)."""
    listed = ", ".join(names[:shown]) + (
        f" and {len(names) - shown} more" if len(names) > shown else ""
    )
    return (
        f"{len(names)} unreadable image{'s' if len(names) > 1 else ''} in {folder} skipped "
        f"(damaged or not an image; replace or remove them): {listed}"
    )
