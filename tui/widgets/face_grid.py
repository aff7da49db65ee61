"""The review grid as one widget drawn line by line (Textual's Line API).

One widget instead of a widget per tile: mounting dozens of widgets cost ~400 ms here, while
drawing 24 tiles from cached strips takes a few milliseconds, so a decision key redraws at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from ..model import FaceItem
from .face_image import strips_for

TILE_WIDTH, TILE_HEIGHT = 16, 10  # cells, border included: a 14×7-cell face and a caption line
IMAGE_WIDTH, IMAGE_HEIGHT = TILE_WIDTH - 2, TILE_HEIGHT - 3

BORDER = Style(color="grey50")
CURSOR = Style(color="bright_yellow", bold=True)
VERDICT = {
    "keep": ("✔", Style(color="green", bold=True)),
    "discard": ("✘", Style(color="red", bold=True)),
    None: ("·", Style(color="grey50")),
}
SELECTED = Style(color="black", bgcolor="bright_cyan")
REASON = Style(color="grey70")
EMPTY = Style(bgcolor="grey15")


class FaceGrid(Widget):
    """Tiles of faces; `pixels_of(face)` gives a thumbnail or None while it loads."""

    def __init__(self, pixels_of: Callable[[FaceItem], np.ndarray | None], **kwargs) -> None:
        super().__init__(**kwargs)
        self.pixels_of = pixels_of
        self.faces: list[FaceItem | None] = []
        self.cursor = -1  # index into self.faces
        self.selected: set[int] = set()
        self._images: dict[int, list[Strip]] = {}  # face id → image lines, once per thumbnail

    @property
    def columns(self) -> int:
        return max(1, self.size.width // TILE_WIDTH)

    @property
    def rows(self) -> int:
        return max(1, self.size.height // TILE_HEIGHT)

    def show(self, faces: list[FaceItem | None], cursor: int, selected: set[int]) -> None:
        self.faces, self.cursor, self.selected = faces, cursor, set(selected)
        self.refresh()

    def forget(self, face_id: int) -> None:
        """Drop a face's cached image (its thumbnail changed)."""
        self._images.pop(face_id, None)

    def _image(self, face: FaceItem) -> list[Strip] | None:
        strips = self._images.get(face.id)
        if strips is None:
            pixels = self.pixels_of(face)
            if pixels is None:
                return None
            strips = strips_for(pixels, IMAGE_WIDTH, IMAGE_HEIGHT)
            self._images[face.id] = strips
        return strips

    def _caption(self, face: FaceItem) -> list[Segment]:
        mark, style = VERDICT[face.verdict]
        reasons = ",".join(k for k in face.keys) or "ok"
        text = f" {reasons}"[: IMAGE_WIDTH - 2].ljust(IMAGE_WIDTH - 2)
        first = Segment(" ", SELECTED) if face.id in self.selected else Segment(" ")
        return [first, Segment(mark, style), Segment(text, REASON)]

    def render_line(self, y: int) -> Strip:
        row, line = divmod(y, TILE_HEIGHT)
        columns = self.columns
        segments: list[Segment] = []
        for column in range(columns):
            index = row * columns + column
            face = self.faces[index] if index < len(self.faces) else None
            segments.extend(self._tile_line(face, line, index == self.cursor))
        return Strip(segments).adjust_cell_length(self.size.width)

    def _tile_line(self, face: FaceItem | None, line: int, cursor: bool) -> list[Segment]:
        if face is None:
            return [Segment(" " * TILE_WIDTH)]
        edge = CURSOR if cursor else BORDER
        corners = ("┏┓┗┛━┃") if cursor else ("╭╮╰╯─│")
        if line == 0:
            return [Segment(corners[0] + corners[4] * IMAGE_WIDTH + corners[1], edge)]
        if line == TILE_HEIGHT - 1:
            return [Segment(corners[2] + corners[4] * IMAGE_WIDTH + corners[3], edge)]
        side = Segment(corners[5], edge)
        if line <= IMAGE_HEIGHT:
            image = self._image(face)
            inner = list(image[line - 1]) if image else [Segment(" " * IMAGE_WIDTH, EMPTY)]
        else:
            inner = self._caption(face)
        return [side, *inner, side]
