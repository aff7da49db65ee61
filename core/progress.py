"""Progress of a long library call, reported as (what, steps done, steps in all)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


class Counter:
    """Counts the steps of one call for its `progress` callback (None: nobody is listening)."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def step(self, what: str) -> None:
        """A step starts."""
        if self.progress:
            self.progress(what, self.done, self.total)
        self.done += 1

    def end(self, what: str) -> None:
        """Every step is done."""
        if self.progress:
            self.progress(what, self.done, self.total)
