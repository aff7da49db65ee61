"""What the real-terminal tests share: a private X server (Xvfb), keys sent with xdotool,
screenshots taken with ImageMagick's `import`, and the faces on screen correlated with the
crops' own pixels (test_tui_xterm.py: sixel in `xterm -ti vt340`; test_tui_kitty.py: kitty's
graphics protocol in kitty).

REELFACE_SCREENSHOTS=DIR keeps the screenshots.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from reelface import catalogue, workspace
from reelface.pipeline import thumbs
from reelface.tui.model import Review

X_TOOLS = ("Xvfb", "import", "xdotool")
TILE = (1, 2, 14, 7)  # the first grid tile's picture: at cell (1, 2), 14 × 7 cells
GOOD = 0.8  # correlation of a face on screen with its own pixels (measured: > 0.99)
FINE = 0.5  # correlation of their Laplacians: real pixels only (half blocks: ~0.18)


def missing(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def seed(tmp_path: Path) -> Path:
    """The TUI tests' seeded workspace (real face pixels, no detector); its root."""
    from tests import tui_seed

    return tui_seed.seed(tmp_path / "ws").root


@contextlib.contextmanager
def x_display(screen: str = "1280x800x24") -> Iterator[str]:
    """A private X server; its display name (Xvfb picks a free number and writes it)."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", screen],
                              pass_fds=(write,), stderr=subprocess.DEVNULL)  # fmt: skip
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def app_script(root: Path, probe: Path, *options: str) -> str:
    """A shell line: the app's --probe written to `probe`, then the app itself."""
    app = shlex.join([sys.executable, "-m", "reelface", "tui", str(root), *options])
    return f"{app} --probe > {shlex.quote(str(probe))}; exec {app}"


def app_command(root: Path, probe: Path, *options: str) -> list[str]:
    return ["sh", "-c", app_script(root, probe, *options)]


class Screen:
    """The X display a terminal runs on: keys in, screenshots out (kept in `shots`)."""

    def __init__(self, display: str, shots: Path) -> None:
        self.env = {**os.environ, "DISPLAY": display}
        self.env.pop("TMUX", None)
        self.shots = shots
        shots.mkdir(parents=True, exist_ok=True)

    def key(self, *names: str) -> None:
        subprocess.run(["xdotool", "key", "--delay", "80", *names], env=self.env, check=True)

    def shot(self, name: str) -> np.ndarray:
        path = self.shots / f"{name}.png"
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True)
        return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)

    def until(self, name: str, good: Callable[[np.ndarray], float], seconds: float = 30) -> float:
        """The best `good` of screenshots taken until one is above GOOD or time is up."""
        deadline, best = time.time() + seconds, -1.0
        while time.time() < deadline:
            best = max(best, good(self.shot(name)))
            if best > GOOD:
                break
            time.sleep(0.5)
        return best


@contextlib.contextmanager
def screenshots() -> Iterator[Path]:
    """Where the screenshots go: REELFACE_SCREENSHOTS (kept), else a folder removed after."""
    keep = os.environ.get("REELFACE_SCREENSHOTS")
    shots = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="rf-shots-"))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        yield shots
    finally:
        if not keep:
            shutil.rmtree(shots, ignore_errors=True)


def read_probe(probe: Path, alive: Callable[[], bool], seconds: float = 30) -> str:
    """What `reelface tui --probe` said in the terminal ("" when the terminal died first)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if probe.exists() and "graphics:" in (said := probe.read_text()):
            return said
        if not alive():
            return ""
        time.sleep(0.2)
    return probe.read_text() if probe.exists() else ""


def cell_size(probe: str) -> tuple[int, int]:
    found = re.search(r"cell (\d+)×(\d+) px", probe)
    assert found, probe
    return int(found.group(1)), int(found.group(2))


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


def first_face(root: Path):
    """The face the review grid shows first for identity 1."""
    conn = catalogue.open_catalogue(workspace.Workspace(root).catalogue_path)
    try:
        return Review.load(conn, 1).visible[0]
    finally:
        conn.close()


def check_faces(
    screen: Screen, root: Path, tile_box: Callable[[int, int, int, int], tuple[int, int, int]]
) -> dict[str, float]:
    """From the dashboard: the review grid's first face, again once it is marked kept, then its
    1:1 zoom in the detail screen, each correlated with the face's own pixels; asserts and
    returns the correlations. `tile_box(x, y, cols, rows)`: where in screen pixels and how
    large (left, top, side) the terminal draws the square thumbnail fitted in those cells."""
    time.sleep(3)  # the dashboard
    screen.key("i")
    time.sleep(2)
    screen.key("Return")
    face = first_face(root)
    left, top, side = tile_box(*TILE)
    tile = cv2.resize(thumbs.load_thumb(root, face.crop_path), (side, side),
                      interpolation=cv2.INTER_AREA)  # fmt: skip
    at = (left, top)
    found: dict[str, float] = {}
    found["grid"] = screen.until("review", lambda shot: correlation(shot, tile, at))
    assert found["grid"] > GOOD, f"the first face does not match its thumbnail: {found['grid']:.2f}"
    found["grid detail"] = correlation(screen.shot("review"), tile, at, detail=True)
    assert found["grid detail"] > FINE, (
        f"the first face is not drawn at pixel detail: {found['grid detail']:.2f}"
    )
    # A decision redraws the tile's border and caption only: the picture stays on screen.
    screen.key("k", "Left")
    time.sleep(1.5)
    found["kept detail"] = correlation(screen.shot("kept"), tile, at, detail=True)
    assert found["kept detail"] > FINE, (
        f"the face was erased when its tile was marked: {found['kept detail']:.2f}"
    )
    screen.key("Return")
    time.sleep(2)
    screen.shot("detail")
    screen.key("z")
    crop = cv2.cvtColor(cv2.imread(str(root / face.crop_path)), cv2.COLOR_BGR2RGB)
    # Zoomed, the 256-px crop is drawn unscaled, centred in the pane under the top line.
    found["zoom"] = screen.until("zoom", lambda shot: correlation(shot, crop, None))
    assert found["zoom"] > GOOD, (
        f"the 1:1 zoom does not show the crop's pixels: {found['zoom']:.2f}"
    )
    found["zoom detail"] = correlation(screen.shot("zoom"), crop, None, detail=True)
    assert found["zoom detail"] > FINE, (
        f"the zoom is not at 1:1 pixel detail: {found['zoom detail']:.2f}"
    )
    print(", ".join(f"{name} {value:.3f}" for name, value in found.items()))
    screen.key("q")  # quits from any screen
    return found


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], log: Path | None = None) -> Iterator:
    """The terminal's process, killed if it is still running at the end."""
    with open(log or os.devnull, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
