"""Kitty's graphics protocol: transmit a PNG once under an id, show it with Unicode placeholders.

Placeholders are ordinary cells (U+10EEEE plus row/column diacritics, the id in the foreground
colour), so Textual's compositor draws, clips and overdraws them like text, and tmux passes them
through; only the transmission is an escape, written once per image after a frame.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

CHUNK = 4096  # the protocol's largest payload per escape
PLACEHOLDER = "\U0010eeee"
# Row and column numbers as combining marks: the protocol's table (kitty's
# rowcolumn-diacritics.txt), first 128 entries — enough for a 128×128-cell image.
_DIACRITICS = (
    0x0305, 0x030D, 0x030E, 0x0310, 0x0312, 0x033D, 0x033E, 0x033F, 0x0346, 0x034A, 0x034B, 0x034C,
    0x0350, 0x0351, 0x0352, 0x0357, 0x035B, 0x0363, 0x0364, 0x0365, 0x0366, 0x0367, 0x0368, 0x0369,
    0x036A, 0x036B, 0x036C, 0x036D, 0x036E, 0x036F, 0x0483, 0x0484, 0x0485, 0x0486, 0x0487, 0x0592,
    0x0593, 0x0594, 0x0595, 0x0597, 0x0598, 0x0599, 0x059C, 0x059D, 0x059E, 0x059F, 0x05A0, 0x05A1,
    0x05A8, 0x05A9, 0x05AB, 0x05AC, 0x05AF, 0x05C4, 0x0610, 0x0611, 0x0612, 0x0613, 0x0614, 0x0615,
    0x0616, 0x0617, 0x0657, 0x0658, 0x0659, 0x065A, 0x065B, 0x065D, 0x065E, 0x06D6, 0x06D7, 0x06D8,
    0x06D9, 0x06DA, 0x06DB, 0x06DC, 0x06DF, 0x06E0, 0x06E1, 0x06E2, 0x06E4, 0x06E7, 0x06E8, 0x06EB,
    0x06EC, 0x0730, 0x0732, 0x0733, 0x0735, 0x0736, 0x073A, 0x073D, 0x073F, 0x0740, 0x0741, 0x0743,
    0x0745, 0x0747, 0x0749, 0x074A, 0x07EB, 0x07EC, 0x07ED, 0x07EE, 0x07EF, 0x07F0, 0x07F1, 0x07F3,
    0x0816, 0x0817, 0x0818, 0x0819, 0x081B, 0x081C, 0x081D, 0x081E, 0x081F, 0x0820, 0x0821, 0x0822,
    0x0823, 0x0825, 0x0826, 0x0827, 0x0829, 0x082A, 0x082B, 0x082C,
)  # fmt: skip
MAX_CELLS = len(_DIACRITICS)


def wrap_tmux(escape: str) -> str:
    """The escape passed through tmux to the outer terminal (needs `allow-passthrough on`)."""
    return "\x1bPtmux;" + escape.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(
        ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1]
    )
    if not ok:
        raise ValueError("cannot encode the image as PNG")
    return data.tobytes()


def transmit(image_id: int, rgb: np.ndarray, cols: int, rows: int, tmux: bool = False) -> str:
    """Escapes that store the image under `image_id` and make a cols×rows virtual placement."""
    payload = base64.standard_b64encode(png(rgb)).decode("ascii")
    chunks = [payload[i : i + CHUNK] for i in range(0, len(payload), CHUNK)] or [""]
    escapes = []
    for number, chunk in enumerate(chunks):
        more = int(number < len(chunks) - 1)
        keys = f"a=t,f=100,t=d,i={image_id},q=2,m={more}" if number == 0 else f"m={more}"
        escapes.append(f"\x1b_G{keys};{chunk}\x1b\\")
    escapes.append(f"\x1b_Ga=p,U=1,i={image_id},c={cols},r={rows},q=2\x1b\\")
    return "".join(wrap_tmux(e) for e in escapes) if tmux else "".join(escapes)


def delete(image_id: int, tmux: bool = False) -> str:
    """Free the image and its placements in the terminal."""
    escape = f"\x1b_Ga=d,d=I,i={image_id},q=2\x1b\\"
    return wrap_tmux(escape) if tmux else escape


def placeholder_strips(image_id: int, cols: int, rows: int) -> list[Strip]:
    """The cells that show the image: one strip per row, the id (< 2**24) as the foreground."""
    style = Style(
        color=Color.from_rgb((image_id >> 16) & 255, (image_id >> 8) & 255, image_id & 255)
    )
    strips = []
    for row in range(min(rows, MAX_CELLS)):
        mark = chr(_DIACRITICS[row])
        text = "".join(
            PLACEHOLDER + mark + chr(_DIACRITICS[c]) for c in range(min(cols, MAX_CELLS))
        )
        strips.append(Strip([Segment(text, style)], cols))
    return strips
