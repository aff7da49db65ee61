"""Truecolor half blocks, two pixels per cell: the fallback every terminal and snapshot shows."""

from __future__ import annotations

import cv2
import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

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
