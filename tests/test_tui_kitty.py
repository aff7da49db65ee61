"""A real terminal with real pixels: `reelface tui` in kitty (its graphics protocol, images shown
with Unicode placeholders) under Xvfb, screenshots of the review grid and of the 1:1 zoom
compared with the faces' own pixels, as test_tui_xterm.py does for sixel.

Needs kitty 0.28 or later (the first with Unicode placeholders; Debian 12 ships 0.26.5, so
there it skips), OpenGL 3.3 (Mesa's llvmpipe gives it under Xvfb), Xvfb, ImageMagick's `import`
and xdotool. REELFACE_KITTY=PATH runs another kitty; REELFACE_SCREENSHOTS=DIR keeps the
screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import real_terminal as rt

KITTY = os.environ.get("REELFACE_KITTY") or shutil.which("kitty") or "kitty"
PLACEHOLDERS = (0, 28)  # the kitty version that draws U+10EEEE placeholder cells
# What kitty says when it gets no OpenGL 3.3 context or no X display (not its DBUS warnings).
NO_WINDOW = r"opengl|glx|glfw initiali[sz]ation|failed to create|cannot open display"


def kitty_version() -> tuple[int, ...] | None:
    try:
        said = subprocess.run([KITTY, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"kitty (\d+)\.(\d+)\.(\d+)", said.stdout)
    return tuple(int(part) for part in found.groups()) if found else None


MISSING = rt.missing(*rt.X_TOOLS) + ([] if shutil.which(KITTY) else ["kitty"])
VERSION = None if MISSING else kitty_version()
pytestmark = [
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"needs {', '.join(MISSING)} (apt-get install kitty xvfb imagemagick xdotool)",
    ),
    pytest.mark.skipif(
        not MISSING and (VERSION is None or VERSION < PLACEHOLDERS),
        reason=f"kitty {'.'.join(map(str, VERSION or ())) or '(version unknown)'} predates "
        "Unicode placeholders (0.28), which the app shows kitty images with",
    ),
]


@pytest.mark.parametrize("through", ["direct", "tmux"])
def test_kitty_shows_the_faces_at_their_pixels(tmp_path: Path, through: str) -> None:
    """In kitty itself, and in tmux (allow-passthrough on) in kitty: the same placeholders."""
    if through == "tmux" and not shutil.which("tmux"):
        pytest.skip("needs tmux (apt-get install tmux)")
    root = rt.seed(tmp_path)
    with rt.screenshots() as shots, rt.x_display() as display:
        screen = rt.Screen(display, shots / through)
        env = {**screen.env, "LIBGL_ALWAYS_SOFTWARE": "1", "KITTY_CONFIG_DIRECTORY": str(shots)}
        env.pop("WAYLAND_DISPLAY", None)
        probe, log = screen.shots / "probe.txt", screen.shots / "kitty.log"
        inside = rt.app_command(root, probe)
        socket = tmp_path / "tmux.sock"
        if through == "tmux":
            conf = tmp_path / "tmux.conf"
            conf.write_text("set -g allow-passthrough on\nset -g status off\n")
            inside = ["tmux", "-S", str(socket), "-f", str(conf), "new-session",
                      rt.app_script(root, probe)]  # fmt: skip
        command = [KITTY, "--config", "NONE", "-o", "linux_display_server=x11",
                   "-o", "remember_window_size=no", "-o", "initial_window_width=120c",
                   "-o", "initial_window_height=40c", "-o", "window_padding_width=0",
                   "-o", "placement_strategy=top-left", "-o", "confirm_os_window_close=0",
                   *inside]  # fmt: skip
        try:
            with rt.running(command, env, log) as terminal:
                said = rt.read_probe(probe, lambda: terminal.poll() is None)
                if not said and terminal.poll() is not None:
                    lines = log.read_text(errors="replace").splitlines()
                    why = [line for line in lines if re.search(NO_WINDOW, line, re.IGNORECASE)]
                    if why:
                        pytest.skip(f"kitty cannot open a window here: {' / '.join(why)[-300:]}")
                assert "graphics: kitty" in said, said or log.read_text(errors="replace")
                if through == "tmux":
                    assert "through tmux passthrough" in said, said
                cw, ch = rt.cell_size(said)

                def tile_box(x: int, y: int, cols: int, rows: int) -> tuple[int, int, int]:
                    # kitty scales the padded picture to the cells: centred to the pixel.
                    width, height = cols * cw, rows * ch
                    side = min(width, height)
                    return cw * x + (width - side) // 2, ch * y + (height - side) // 2, side

                try:
                    rt.check_faces(screen, root, tile_box)
                except AssertionError as error:
                    if through == "tmux" and "1:1 zoom" in str(error):
                        # Seen in 5 of 13 runs with tmux 3.3a: the big zoom image (~140 KB of
                        # escapes) never arrives, its cells stay blank; the grid always does.
                        pytest.xfail(f"tmux lost the zoom image's passthrough escapes: {error}")
                    raise
                terminal.wait(15)
        finally:
            if socket.exists():
                subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True)
