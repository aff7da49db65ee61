"""A sixel encoder: RGB → ≤ 255 colour registers → 6-row bands, run-length coded.

Written here rather than taken from textual-image: its encoder is tied to its one-widget-per-image
Textual classes (our grid is one widget), and it is not usable on Python 3.11 with tmux
passthrough. Every step is a whole-array numpy operation over the pixels or the runs (no Python
loop per band, colour or run): a 140×138 thumbnail encodes in ~1.5 ms on the 2-core build VM,
where a loop per band and colour took ~5.5 ms, byte for byte the same output.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

BAND = 6  # pixel rows per sixel character
MAX_WIDTH = 9999  # a run's count has at most four digits
_UNSET = ord("?")  # the sixel character with no bit set
_CHAR = 1  # in a token: the run's character goes here


def _token_table() -> tuple[np.ndarray, np.ndarray]:
    """Every token's bytes (rows ≤ MAX_WIDTH: a run of that length; then "#c" per colour, "$",
    "-") and lengths: a run of 1-3 is the character written out, a longer one "!count" char."""
    count = np.arange(MAX_WIDTH + 1)
    digits = 1 + (count >= 10) + (count >= 100) + (count >= 1000)
    long = count >= 4
    table = np.zeros((len(count) + 258, 6), np.uint8)
    lengths = np.zeros(len(table), np.int64)
    table[count[long], 0] = ord("!")
    for place in range(4):
        has = long & (digits > place)
        table[count[has], 1 + place] = count[has] // 10 ** (digits[has] - 1 - place) % 10 + ord("0")
    table[count[long], 1 + digits[long]] = _CHAR
    lengths[count[long]] = 2 + digits[long]
    for run in range(1, 4):
        table[run, :run], lengths[run] = _CHAR, run
    for colour in range(256):
        text = b"#%d" % colour
        table[_COLOURS + colour, : len(text)] = np.frombuffer(text, np.uint8)
        lengths[_COLOURS + colour] = len(text)
    table[_NEXT_LINE, 0], table[_NEXT_BAND, 0] = ord("$"), ord("-")
    lengths[[_NEXT_LINE, _NEXT_BAND]] = 1
    return table, lengths


_COLOURS, _NEXT_LINE, _NEXT_BAND = MAX_WIDTH + 1, MAX_WIDTH + 257, MAX_WIDTH + 258
_TABLE, _LENGTH = _token_table()


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
    """A complete sixel image (DCS … ST) of an H×W×3 uint8 array, drawn at the cursor.

    Per band of six rows, one line of sixel characters per colour present in it ("#c" then the
    characters, "$" back to the band's start, "-" after its last colour), runs of four or more
    equal characters as "!count", and each line's trailing unset characters left off."""
    height, width = rgb.shape[:2]
    if width > MAX_WIDTH:
        raise ValueError(f"a sixel image here is at most {MAX_WIDTH} pixels wide")
    indices, palette = quantise(rgb, min(colours, 255))
    percent = (palette.astype(np.int32) * 100 + 127) // 255
    head = [b'\x1bP0;1;0q"1;1;%d;%d' % (width, height)]
    head += [b"#%d;2;%d;%d;%d" % (i, r, g, b) for i, (r, g, b) in enumerate(percent.tolist())]
    # Lines of characters: one per (band, colour) present in the band, in that order.
    rows = np.arange(height)
    pair = (rows // BAND * 256)[:, None] + indices
    present = np.zeros(-(-height // BAND) * 256, bool)
    present[pair.ravel()] = True
    pairs = np.flatnonzero(present)
    cell_type = np.int32 if len(pairs) * width < 2**31 else np.int64
    line = (np.cumsum(present, dtype=cell_type) - 1)[pair]
    # The set cells, in order, from every pixel's cell (line, column); and their characters.
    cells = np.zeros(len(pairs) * width, np.uint8)  # a line's characters, less "?"
    columns = np.arange(width, dtype=cell_type)
    for bit in range(BAND):  # a band's row: one pixel per cell, so += sets the bit
        cells[line[bit::BAND] * width + columns] += np.uint8(1 << bit)
    at = np.sort((line * width + columns).ravel())  # in line order, then column order
    at = at[np.append(True, at[1:] != at[:-1])]
    value = cells[at]
    # Runs of one character among the set cells, and the unset cells before each run.
    line, x = np.divmod(at, width)
    starts = np.ones(len(at), bool)
    starts[1:] = (at[1:] != at[:-1] + 1) | (value[1:] != value[:-1]) | (line[1:] != line[:-1])
    start = np.flatnonzero(starts)
    length = np.diff(np.append(start, len(at)))
    line, x, char = line[start], x[start], (value[start] + _UNSET).astype(np.uint8)
    first = np.ones(len(start), bool)
    first[1:] = line[1:] != line[:-1]
    gap = x.copy()  # unset cells since the line's start, or since the previous run's end
    gap[1:] -= np.where(first[1:], 0, x[:-1] + length[:-1])
    # Tokens, left to right: per line "#c", then (unset gap, run) per run, then "$" or "-".
    first_run = np.flatnonzero(first)  # one per line: every line has a set cell
    lines = np.arange(len(pairs))
    token = np.empty(2 * len(start) + 2 * len(pairs), np.int64)
    fill = np.zeros(len(token), np.uint8)  # the character of a run's token
    token[2 * first_run + 2 * lines] = _COLOURS + pairs % 256
    last = np.append(pairs[1:] // 256 != pairs[:-1] // 256, True)
    ends = np.append(first_run[1:], len(start))
    token[2 * ends + 2 * lines + 1] = np.where(last, _NEXT_BAND, _NEXT_LINE)
    where = 2 * np.arange(len(start)) + 2 * line + 1
    token[where], fill[where] = gap, _UNSET
    token[where + 1], fill[where + 1] = length, char
    # The tokens' bytes, one output byte at a time.
    size = _LENGTH[token]
    of = np.repeat(np.arange(len(token)), size)
    offset = np.cumsum(size) - size
    body = _TABLE.ravel()[token[of] * _TABLE.shape[1] + np.arange(len(of)) - offset[of]]
    body = np.where(body == _CHAR, fill[of], body)
    return (b"".join(head) + body.tobytes() + b"\x1b\\").decode("ascii")
