"""The review grid as one widget drawn line by line (Textual's Line API).

One widget instead of a widget per tile: mounting dozens of widgets cost ~400 ms here, while
drawing 24 tiles from cached strips takes a few milliseconds, so a decision key redraws at once.
A key redraws only the borders and captions of the tiles it changed, never their pictures, so
sixels (written after the frame, see graphics/pictures.py) are sent again only on a new page.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from ..model import FaceItem

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
GROUP = Style(color="bright_cyan", bold=True)
EMPTY = Style(bgcolor="grey15")


class FaceGrid(Widget):
    """Tiles of faces; `pixels_of(face)` gives a thumbnail or None while it loads."""

    def __init__(self, pixels_of: Callable[[FaceItem], np.ndarray | None], **kwargs) -> None:
        super().__init__(**kwargs)
        self.pixels_of = pixels_of
        self.faces: list[FaceItem | None] = []
        self.cursor = -1  # index into self.faces
        self.selected: set[int] = set()
        self.folded: dict[int, int] = {}  # face id → duplicates folded under it
        self._images: dict[int, list[Strip]] = {}  # face id → image lines, once per thumbnail
        self._shown: list[tuple[object, ...]] = []  # what each tile showed, to redraw only changes

    @property
    def columns(self) -> int:
        return max(1, self.size.width // TILE_WIDTH)

    @property
    def rows(self) -> int:
        return max(1, self.size.height // TILE_HEIGHT)

    def show(
        self,
        faces: list[FaceItem | None],
        cursor: int,
        selected: set[int],
        folded: dict[int, int] | None = None,
    ) -> None:
        self.faces, self.cursor, self.selected = faces, cursor, set(selected)
        self.folded = folded or {}
        shown = [self._state(index) for index in range(len(faces))]
        old, self._shown = self._shown, shown
        if [s[0] for s in old] != [s[0] for s in shown]:  # another page, or faces moved
            self.refresh()
            return
        for index, (before, now) in enumerate(zip(old, shown, strict=True)):
            if before != now:
                self.refresh(*self._frame(index))

    def _state(self, index: int) -> tuple[object, ...]:
        face = self.faces[index]
        if face is None:
            return (None,)
        return (face.id, face.verdict, tuple(face.keys), face.id in self.selected,
                index == self.cursor, self.folded.get(face.id, 0))  # fmt: skip

    def _tile(self, index: int) -> Region:
        row, column = divmod(index, self.columns)
        return Region(column * TILE_WIDTH, row * TILE_HEIGHT, TILE_WIDTH, TILE_HEIGHT)

    @property
    def _sixel(self) -> bool:
        return self.app.pictures.protocol == "sixel"

    def _frame(self, index: int) -> list[Region]:
        """The cells of a tile around its picture: border and caption (sixel: not the sides)."""
        x, y, w, h = self._tile(index)
        lines = [Region(x, y, w, 1), Region(x, y + h - 2, w, 2)]
        if self._sixel:
            return lines
        return [
            *lines,
            Region(x, y + 1, 1, IMAGE_HEIGHT),
            Region(x + w - 1, y + 1, 1, IMAGE_HEIGHT),
        ]

    def render_lines(self, crop: Region) -> list[Strip]:
        lines = super().render_lines(crop)
        pictures = self.app.pictures
        if pictures.protocol == "sixel" and self.screen is self.app.screen:
            origin = self.content_region.offset
            for index, face in enumerate(self.faces):
                if face is None or face.id not in self._images:
                    continue
                x, y, _, _ = self._tile(index)
                picture = Region(x + 1, y + 1, IMAGE_WIDTH, IMAGE_HEIGHT)
                if picture.overlaps(crop):  # its cells were drawn again: so is the sixel
                    pictures.place(face.crop_path, origin.x + x + 1, origin.y + y + 1,
                                   IMAGE_WIDTH, IMAGE_HEIGHT)  # fmt: skip
        return lines

    def redraw(self, crop_paths: set[str]) -> None:
        """Draw again the tiles of these faces (their pictures are ready)."""
        tiles = [self._tile(i) for i, f in enumerate(self.faces) if f and f.crop_path in crop_paths]
        if tiles:
            self.refresh(*tiles)

    def on_resize(self) -> None:
        self._shown = []  # tiles move: draw everything

    def forget(self, face_id: int) -> None:
        """Drop a face's cached image (its thumbnail changed)."""
        self._images.pop(face_id, None)

    def _image(self, face: FaceItem) -> list[Strip] | None:
        strips = self._images.get(face.id)
        if strips is None:
            pixels = self.pixels_of(face)
            pictures = self.app.pictures
            if pixels is None or not pictures.ready(face.crop_path, IMAGE_WIDTH, IMAGE_HEIGHT):
                return None  # encoded before a page is shown, or by the loader: never in a draw
            strips = self.app.pictures.lines(face.crop_path, pixels, IMAGE_WIDTH, IMAGE_HEIGHT)
            self._images[face.id] = strips
        return strips

    def _caption(self, face: FaceItem) -> list[Segment]:
        mark, style = VERDICT[face.verdict]
        reasons = ",".join(k for k in face.keys) or "ok"
        more = self.folded.get(face.id, 0)
        group = f"+{more}" if more else ""  # duplicates folded under this face (g expands)
        room = IMAGE_WIDTH - 2 - len(group)
        text = f" {reasons}"[:room].ljust(room)
        first = Segment(" ", SELECTED) if face.id in self.selected else Segment(" ")
        return [first, Segment(mark, style), Segment(text, REASON), Segment(group, GROUP)]

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
        # Under a sixel, the sides keep their look: Textual rewrites a line from the widget's left
        # edge up to a changed cell, so a redrawn side would erase (and resend) the pictures.
        side = Segment("│", BORDER) if self._sixel else Segment(corners[5], edge)
        if line <= IMAGE_HEIGHT:
            image = self._image(face)
            inner = list(image[line - 1]) if image else [Segment(" " * IMAGE_WIDTH, EMPTY)]
        else:
            inner = self._caption(face)
        return [side, *inner, side]
