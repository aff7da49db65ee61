"""One image in as many cells as the widget has: half blocks, kitty placeholders or a sixel."""

from __future__ import annotations

from functools import partial

import numpy as np
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from ..graphics.halfblock import strips_for  # noqa: F401  (the grid's and older callers' name)


class Encoded(Message, bubble=False):
    """An image is encoded for (key, cols, rows): draw it."""

    def __init__(self, job: tuple[str, int, int]) -> None:
        super().__init__()
        self.job = job


class FaceImage(Widget):
    """Shows an RGB array fitted to its size, aspect kept; `exact` shows it unscaled (1:1 zoom).

    Encoding a large sixel or PNG takes a while, so it runs in a thread worker and the cells stay
    blank until it is done; the lines are then cached per size, so redraws cost nothing here."""

    def __init__(self, pixels: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._face_pixels = pixels
        self._key = f"image-{id(self)}"
        self._exact = False
        self._lines: list[Strip] = []
        self._lines_size: tuple[int, int] = (0, 0)
        self._encoding: tuple[str, int, int] | None = None

    @property
    def pixels(self) -> np.ndarray | None:
        return self._face_pixels

    @pixels.setter
    def pixels(self, value: np.ndarray | None) -> None:
        self.show(value, f"image-{id(self)}-{id(value)}")

    def show(self, pixels: np.ndarray | None, key: str, exact: bool = False) -> None:
        """Show `pixels`; `key` names them in the encoded-image caches (one key, one picture)."""
        self._face_pixels, self._key, self._exact = pixels, key, exact
        self._lines_size = (0, 0)
        self.refresh()

    def _encode(self, job: tuple[str, int, int], pixels: np.ndarray, exact: bool) -> None:
        key, cols, rows = job
        self.app.pictures.prepare(key, pixels, cols, rows, exact)
        # Posted, not call_from_thread: that waits for the UI, which never answers while closing.
        self.post_message(Encoded(job))

    def on_encoded(self, message: Encoded) -> None:
        if self._encoding == message.job:
            self._encoding = None
            self._lines_size = (0, 0)
            self.refresh()

    def _ensure_lines(self) -> None:
        width, height = self.size.width, self.size.height
        if self._face_pixels is None:  # blank (shown None): nothing drawn, nothing placed
            self._lines = []
            return
        if self._lines_size == (width, height):
            return
        pictures = self.app.pictures
        job = (self._key, width, height)
        if pictures.protocol != "halfblock" and not pictures.ready(*job):
            if self._encoding != job:
                self._encoding = job
                self.run_worker(
                    partial(self._encode, job, self._face_pixels, self._exact),
                    thread=True, group="encode", exclusive=True,
                )  # fmt: skip
            self._lines = []
            return
        self._lines = pictures.lines(self._key, self._face_pixels, width, height, self._exact)
        self._lines_size = (width, height)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        self._ensure_lines()
        return self._lines[y] if y < len(self._lines) else Strip.blank(width)

    def render_lines(self, crop: Region) -> list[Strip]:
        lines = super().render_lines(crop)
        if self._lines and self.screen is self.app.screen:
            origin = self.content_region
            self.app.pictures.place(self._key, origin.x, origin.y, origin.width, origin.height)
        return lines
