"""A real terminal with real pixels: `reelface tui` in `xterm -ti vt340` (sixel) under Xvfb,
screenshots of the review grid and of the 1:1 zoom compared with the faces' own pixels.

Needs xterm, Xvfb, ImageMagick's `import` and xdotool (Debian: apt-get install xterm xvfb
imagemagick xdotool); skipped without them. REELFACE_SCREENSHOTS=DIR keeps the screenshots.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import real_terminal as rt

MISSING = rt.missing("xterm", *rt.X_TOOLS)
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"needs {', '.join(MISSING)} (apt-get install xterm xvfb imagemagick xdotool)",
)
BORDER = 2  # xterm's internal border, in pixels
BAND = 6  # a sixel's rows come in bands of 6 pixels


def test_xterm_sixel_shows_the_faces_at_their_pixels(tmp_path: Path) -> None:
    root = rt.seed(tmp_path)
    with rt.screenshots() as shots, rt.x_display() as display:
        screen = rt.Screen(display, shots)
        probe = shots / "probe.txt"
        command = ["xterm", "-ti", "vt340", "-geometry", "120x40+0+0", "-e",
                   *rt.app_command(root, probe)]  # fmt: skip
        with rt.running(command, screen.env) as terminal:
            said = rt.read_probe(probe, lambda: terminal.poll() is None)
            assert "graphics: sixel" in said, said  # xterm -ti vt340 answers DA1 with 4
            cw, ch = rt.cell_size(said)

            def tile_box(x: int, y: int, cols: int, rows: int) -> tuple[int, int, int]:
                # Whole 6-pixel bands, the picture centred by whole cells.
                width, height = cols * cw, rows * ch - rows * ch % BAND
                side = min(width, height)
                dx, dy = (width - side) // 2 // cw, (height - side) // 2 // ch
                return BORDER + cw * (x + dx), BORDER + ch * (y + dy), side

            rt.check_faces(screen, root, tile_box)
            terminal.wait(15)
