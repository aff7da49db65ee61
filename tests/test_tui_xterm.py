"""A real terminal with real pixels: `reelface tui` in `xterm -ti vt340` (sixel) under Xvfb,
screenshots of the review grid and of the 1:1 zoom compared with the faces' own pixels.

Needs xterm, Xvfb, ImageMagick's `import` and xdotool (Debian: apt-get install xterm xvfb
imagemagick xdotool); skipped without them. REELFACE_SCREENSHOTS=DIR keeps the screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from reelface import catalogue, workspace
from reelface.pipeline import thumbs
from reelface.tui.model import Review

TOOLS = ("xterm", "Xvfb", "import", "xdotool")
MISSING = [tool for tool in TOOLS if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"needs {', '.join(MISSING)} (apt-get install xterm xvfb imagemagick xdotool)",
)
BORDER = 2  # xterm's internal border, in pixels


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    from tests import tui_seed

    return tui_seed.seed(tmp_path / "ws").root


@pytest.fixture
def display() -> Iterator[str]:
    """A private X server; its display name."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24"],
                              pass_fds=(write,), stderr=subprocess.DEVNULL)  # fmt: skip
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def correlation(
    screen: np.ndarray, picture: np.ndarray, near: tuple[int, int] | None, detail: bool = False
) -> float:
    """The best normalised correlation of `picture` within 12 px of `near` (None: anywhere) on
    the screenshot, at the picture's own size; `detail`: of their Laplacians, which only real
    pixels match (half blocks of the same face correlate 0.9 in intensity, 0.18 in detail)."""
    window = screen
    if near is not None:
        x, y = near
        h, w = picture.shape[:2]
        window = screen[max(0, y - 12) : y + h + 12, max(0, x - 12) : x + w + 12]
    grey = [cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32) for a in (window, picture)]
    if detail:
        # σ = 1 first: the sixel's 255-colour quantisation is noise at the pixel level.
        grey = [cv2.Laplacian(cv2.GaussianBlur(a, (0, 0), 1.0), cv2.CV_32F) for a in grey]
    return float(cv2.matchTemplate(grey[0], grey[1], cv2.TM_CCOEFF_NORMED).max())


def test_xterm_sixel_shows_the_faces_at_their_pixels(seeded: Path, display: str) -> None:
    keep = os.environ.get("REELFACE_SCREENSHOTS")
    shots = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="rf-shots-"))
    shots.mkdir(parents=True, exist_ok=True)
    probe = shots / "probe.txt"
    env = {**os.environ, "DISPLAY": display}
    env.pop("TMUX", None)
    app = f"{sys.executable} -m reelface tui {seeded}"
    terminal = subprocess.Popen(
        ["xterm", "-ti", "vt340", "-geometry", "120x40+0+0", "-e", "sh", "-c",
         f"{app} --probe > {probe}; exec {app}"],
        env=env,
    )  # fmt: skip

    def key(*names: str) -> None:
        subprocess.run(["xdotool", "key", "--delay", "80", *names], env=env, check=True)

    def shot(name: str) -> np.ndarray:
        path = shots / f"{name}.png"
        subprocess.run(["import", "-window", "root", str(path)], env=env, check=True)
        return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)

    def until(name: str, good: Callable[[np.ndarray], float], seconds: float = 30) -> float:
        deadline, best = time.time() + seconds, -1.0
        while time.time() < deadline:
            best = max(best, good(shot(name)))
            if best > 0.8:
                break
            time.sleep(0.5)
        return best

    try:
        deadline = time.time() + 30
        while not (probe.exists() and "graphics:" in probe.read_text()) and time.time() < deadline:
            time.sleep(0.2)
        said = probe.read_text()
        assert "graphics: sixel" in said, said  # xterm -ti vt340 answers DA1 with 4
        cw, ch = (int(v) for v in re.search(r"cell (\d+)×(\d+) px", said).groups())
        time.sleep(3)  # the dashboard
        key("i")
        time.sleep(2)
        key("Return")
        conn = catalogue.open_catalogue(workspace.Workspace(seeded).catalogue_path)
        first = Review.load(conn, 1).visible[0]
        conn.close()
        # The first tile's picture: 14 × 7 cells at cell (1, 2), whole 6-pixel bands, square.
        side = min(14 * cw, 7 * ch - 7 * ch % 6)
        tile = cv2.resize(thumbs.load_thumb(seeded, first.crop_path), (side, side),
                          interpolation=cv2.INTER_AREA)  # fmt: skip
        at = (BORDER + cw * (1 + (14 * cw - side) // 2 // cw), BORDER + ch * 2)
        grid = until("review", lambda screen: correlation(screen, tile, at))
        assert grid > 0.8, f"the first face on screen does not match its thumbnail: {grid:.2f}"
        fine = correlation(shot("review"), tile, at, detail=True)
        assert fine > 0.5, f"the first face is not drawn at pixel detail: {fine:.2f}"
        # A decision redraws the tile's border and caption only: the picture stays on screen.
        key("k", "Left")
        time.sleep(1.5)
        kept = correlation(shot("kept"), tile, at, detail=True)
        assert kept > 0.5, f"the face was erased when its tile was marked: {kept:.2f}"
        key("Return")
        time.sleep(2)
        shot("detail")
        key("z")
        crop = cv2.cvtColor(cv2.imread(str(seeded / first.crop_path)), cv2.COLOR_BGR2RGB)
        # Zoomed, the 256-px crop is drawn unscaled, centred in the pane under the top line.
        zoom = until("zoom", lambda screen: correlation(screen, crop, None))
        assert zoom > 0.8, f"the 1:1 zoom does not show the crop's pixels: {zoom:.2f}"
        zoom_fine = correlation(shot("zoom"), crop, None, detail=True)
        assert zoom_fine > 0.5, f"the zoom is not at 1:1 pixel detail: {zoom_fine:.2f}"
        print(f"grid {grid:.3f} (detail {fine:.3f}), zoom {zoom:.3f} (detail {zoom_fine:.3f})")
        key("q")  # quits from any screen
        terminal.wait(15)
    finally:
        if terminal.poll() is None:
            terminal.kill()
        if not keep:
            shutil.rmtree(shots, ignore_errors=True)
