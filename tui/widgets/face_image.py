"""A face drawn in truecolor half blocks: any terminal, tmux, SSH and snapshots show it."""

from __future__ import annotations

import cv2
import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

UPPER_HALF = "▀"


def strips_for(pixels: np.ndarray, width: int, height: int) -> list[Strip]:
    """Cell rows for an RGB image shrunk to width × 2·height pixels: top pixel ▀ on bottom pixel."""
    if width <= 0 or height <= 0:
        return []
    small = cv2.resize(pixels, (width, height * 2), interpolation=cv2.INTER_AREA)
    strips = []
    for row in range(height):
        top, bottom = small[2 * row], small[2 * row + 1]
        segments = [
            Segment(UPPER_HALF, Style.from_color(Color.from_rgb(*t), Color.from_rgb(*b)))
            for t, b in zip(top.tolist(), bottom.tolist(), strict=True)
        ]
        strips.append(Strip(segments, width))
    return strips


class FaceImage(Widget):
    """Shows an RGB array; strips are computed once per size, so cursor moves cost nothing here."""

    def __init__(self, pixels: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._face_pixels = pixels
        self._face_strips: list[Strip] = []
        self._strips_size: tuple[int, int] = (0, 0)

    @property
    def pixels(self) -> np.ndarray | None:
        return self._face_pixels

    @pixels.setter
    def pixels(self, value: np.ndarray | None) -> None:
        self._face_pixels = value
        self._strips_size = (0, 0)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        if self._face_pixels is None:
            return Strip.blank(width)
        if self._strips_size != (width, height):
            self._face_strips = strips_for(self._face_pixels, width, height)
            self._strips_size = (width, height)
        return self._face_strips[y] if y < len(self._face_strips) else Strip.blank(width)
