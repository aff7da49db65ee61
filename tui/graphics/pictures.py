"""Pictures for the widgets: cell lines per image and protocol, and the escapes after a frame.

A widget asks `lines(key, pixels, cols, rows)` for the cells an image covers: half blocks, kitty
placeholders, or blanks under a sixel. Sixels cannot be cells, so a widget that has drawn those
blanks calls `place` and the app writes the cached sixel there once the frame is out (`flush`);
kitty images are transmitted once per key and size, then only their placeholder cells are drawn.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict

import cv2
import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from . import kitty, sixel
from .detect import Graphics
from .halfblock import strips_for

BLANK = Style(bgcolor="grey15")
PAD = (38, 38, 38)  # grey15, around an image that does not fill its cells


def fit(
    pixels: np.ndarray, width: int, height: int, exact: bool = False, pad: bool = True
) -> np.ndarray:
    """The image scaled to fit width × height pixels, aspect kept (exact: never enlarged),
    centred on PAD unless `pad` is False."""
    h, w = pixels.shape[:2]
    scale = min(width / w, height / h, 1.0 if exact else np.inf)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if scale == 1.0:
        small = pixels[..., :3]
    else:
        area = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(pixels[..., :3], size, interpolation=area)
    if not pad:
        return small
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = PAD
    top, left = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    return canvas


class Pictures:
    """One per app: the protocol, caches of encoded images, and the sixels placed this frame."""

    def __init__(self, graphics: Graphics | None = None, capacity: int = 2048) -> None:
        self.graphics = graphics or Graphics()
        self.capacity = capacity
        self._encoded: OrderedDict[tuple[str, int, int], str] = OrderedDict()  # sixel or kitty id
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, int, int], int] = {}
        self._offsets: dict[tuple[str, int, int], tuple[int, int]] = {}  # sixel: cells to centre
        self._next_id = random.randint(1 << 16, 1 << 22)  # other programs in the window use ids too
        self._transmit: list[str] = []  # kitty images to send with the next frame
        self._placed: dict[tuple[int, int], tuple[str, int, int]] = {}  # cell → key, this frame

    @property
    def protocol(self) -> str:
        return self.graphics.protocol

    def box(self, cols: int, rows: int) -> tuple[int, int]:
        """The pixels cols × rows cells hold (sixel: rows of whole 6-pixel bands)."""
        cw, ch = self.graphics.cell
        height = rows * ch
        return cols * cw, height - height % sixel.BAND if self.protocol == "sixel" else height

    def prepare(
        self, key: str, pixels: np.ndarray, cols: int, rows: int, exact: bool = False
    ) -> None:
        """Encode ahead of drawing (safe from a worker thread): sixel data, or kitty's PNG."""
        if self.protocol == "halfblock" or (key, cols, rows) in self._encoded:
            return
        width, height = self.box(cols, rows)
        if self.protocol == "sixel":
            # Only the picture is sent (padding would cost as many bytes), centred by whole cells.
            small = fit(pixels, width, height, exact, pad=False)
            cw, ch = self.graphics.cell
            offset = ((width - small.shape[1]) // 2 // cw, (height - small.shape[0]) // 2 // ch)
            data = sixel.encode(small)
            self._offsets.setdefault((key, cols, rows), offset)
        else:
            # Never enlarged before sending: kitty scales the picture to its cells itself.
            h, w = pixels.shape[:2]
            shrink = 1.0 if exact else min(1.0, max(w / width, h / height))
            canvas = fit(
                pixels, max(1, round(width * shrink)), max(1, round(height * shrink)), exact
            )
            with self._lock:
                image_id = self._ids.setdefault((key, cols, rows), self._next_id)
                self._next_id += image_id == self._next_id
            data = kitty.transmit(image_id, canvas, cols, rows, self.graphics.tmux)
        with self._lock:
            if (key, cols, rows) in self._encoded:  # a worker and the UI raced: send it once
                return
            self._encoded[(key, cols, rows)] = data
            if self.protocol == "kitty":
                self._transmit.append(data)
            while len(self._encoded) > self.capacity:
                old, _ = self._encoded.popitem(last=False)
                self._offsets.pop(old, None)
                if (gone := self._ids.pop(old, None)) is not None:
                    self._transmit.append(kitty.delete(gone, self.graphics.tmux))

    def ready(self, key: str, cols: int, rows: int) -> bool:
        """Whether the image is encoded for this size (half blocks need no encoding)."""
        return self.protocol == "halfblock" or (key, cols, rows) in self._encoded

    def lines(
        self, key: str, pixels: np.ndarray, cols: int, rows: int, exact: bool = False
    ) -> list[Strip]:
        """The cells of the image: half blocks, kitty placeholders, or blanks for a sixel."""
        if self.protocol == "halfblock":
            return strips_for(fit(pixels, cols, rows * 2), cols, rows)
        self.prepare(key, pixels, cols, rows, exact)
        if self.protocol == "kitty":
            return kitty.placeholder_strips(self._ids[(key, cols, rows)], cols, rows)
        return [Strip([Segment(" " * cols, BLANK)], cols)] * rows

    def place(self, key: str, x: int, y: int, cols: int, rows: int) -> None:
        """A sixel of `key` at screen cell (x, y), in the frame being rendered; `flush` writes it
        if that frame wrote any of its cells (the compositor renders whole widgets, then writes
        only the changed spans, so only the frame can tell)."""
        if self.protocol == "sixel" and (key, cols, rows) in self._encoded:
            self._placed[(x, y)] = (key, cols, rows)

    def flush(self, written: list[tuple[int, int, int]] | None = None) -> str:
        """The escapes to write after a frame; `written`: its (y, x1, x2) spans, None = all.

        A sixel goes out again only where the frame wrote over its cells (text erases it)."""
        with self._lock:
            out = "".join(self._transmit)
            self._transmit.clear()
        for (x, y), key in self._placed.items():
            _, cols, rows = key
            data = self._encoded.get(key)
            if data and (written is None or _touches(written, x, y, cols, rows)):
                dx, dy = self._offsets.get(key, (0, 0))
                out += f"\x1b[{y + dy + 1};{x + dx + 1}H{data}"
        self._placed.clear()
        return f"\x1b7{out}\x1b8" if out else ""

    def close(self) -> str:
        """Escapes that free every kitty image this app sent."""
        with self._lock:
            ids = list(self._ids.values())
            self._ids.clear()
        return "".join(kitty.delete(i, self.graphics.tmux) for i in ids)


def _touches(spans: list[tuple[int, int, int]], x: int, y: int, cols: int, rows: int) -> bool:
    """Whether a frame with these spans (line, first cell, end cell) wrote over the rectangle.

    Textual writes a partly changed widget line from the widget's left edge up to the span's
    end, so every cell left of a span's end counts as written."""
    return any(y <= line < y + rows and x2 > x for line, _, x2 in spans)
