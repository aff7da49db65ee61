"""A sixel encoder: RGB → ≤ 256 colour registers → 6-row bands, run-length coded.

Written here rather than taken from textual-image: its encoder is tied to its one-widget-per-image
Textual classes (our grid is one widget), and this one is ~60 lines of numpy.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

BAND = 6  # pixel rows per sixel character
# Four or more equal sixel characters ("!count" is shorter); colour numbers are digits, never
# sixel characters (? to ~), so one pass over a whole band codes every row.
_RUN = re.compile(rb"([?-~])\1{3,}")


def _rle(match: re.Match[bytes]) -> bytes:
    run = match.group(0)
    return b"!%d%c" % (len(run), run[0])


def quantise(rgb: np.ndarray, colours: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(H×W palette indices, k×3 palette) with k ≤ colours; Pillow's fast octree, no dither."""
    image = Image.fromarray(np.ascontiguousarray(rgb[..., :3]), "RGB")
    small = image.quantize(
        colors=colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    indices = np.asarray(small, dtype=np.uint8)
    palette = np.asarray(small.getpalette()[: 3 * (int(indices.max()) + 1)], np.uint8).reshape(
        -1, 3
    )
    return indices, palette


def encode(rgb: np.ndarray, colours: int = 255) -> str:
    """A complete sixel image (DCS … ST) of an H×W×3 uint8 array, drawn at the cursor."""
    height, width = rgb.shape[:2]
    # At most 255 registers: index 255 marks the padding rows of the last band, never drawn.
    indices, palette = quantise(rgb, min(colours, 255))
    pad = (-height) % BAND
    if pad:  # the last band's missing rows are never set (a zero bit leaves the screen as it is)
        indices = np.vstack([indices, np.full((pad, width), 255, np.uint8)])
    percent = (palette.astype(np.int32) * 100 + 127) // 255
    out = [b'\x1bP0;1;0q"1;1;%d;%d' % (width, height)]
    out += [b"#%d;2;%d;%d;%d" % (i, r, g, b) for i, (r, g, b) in enumerate(percent.tolist())]
    weights = (1 << np.arange(BAND, dtype=np.uint8))[:, None]
    for top in range(0, indices.shape[0], BAND):
        band = indices[top : top + BAND]
        present = np.unique(band)
        present = present[present < len(palette)]
        # One row of sixel values per colour present: bit r set where row r has that colour.
        masks = band[None, :, :] == present[:, None, None]
        values = (masks * weights[None]).sum(axis=1, dtype=np.uint8) + 63
        # Unset pixels at a row's end need not be sent: rstrip("?").
        band_bytes = b"$".join(
            b"#%d" % colour + row.tobytes().rstrip(b"?")
            for colour, row in zip(present.tolist(), values, strict=True)
        )
        out.append(_RUN.sub(_rle, band_bytes) + b"-")
    out.append(b"\x1b\\")
    return b"".join(out).decode("ascii")
