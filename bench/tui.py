"""How fast the review app answers: a decision key to the next face shown, and a 24-face grid drawn,
with each renderer: half blocks, sixel and kitty (real pixels at a 10×20-pixel cell).

Builds (once, in bench/out) a workspace whose largest identity holds ~200 faces of one real
person, made by the real pipeline from package photos, then drives the app headless with Pilot.
Headless, the frame and its image escapes are built but not written: a terminal's own time to
draw them is not counted.

    python bench/tui.py [--presses 40] [--graphics halfblock,sixel,kitty]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner
from rich.console import Console
from rich.table import Table
from textual import events

from reelface import synth, workspace
from reelface.cli import main as cli_main
from reelface.identity import identify
from reelface.tui.app import ReelfaceApp
from reelface.tui.graphics.detect import Graphics
from reelface.tui.model import Review
from reelface.tui.screens.identities import IdentitiesScreen
from reelface.tui.screens.review import TILE_IMAGE, ReviewScreen
from reelface.tui.thumbcache import ThumbCache

OUT = Path(__file__).parent / "out"
GRID = (128, 32)  # 8 × 3 tiles of 16 × 10 cells: exactly 24 faces


def build(root: Path, faces: int = 200) -> None:
    """An image folder of `faces` views of the astronaut (shifts, zooms, light), extracted."""
    photos, marks = synth.package_photos(), synth.package_landmarks()
    photo = synth.load_photo(photos["skimage_astronaut"])
    landmarks = marks["skimage_astronaut"][0]
    folder = root.parent / "views"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(faces):
        pose = synth.Pose(
            (320 + rng.uniform(-60, 60), 240 + rng.uniform(-40, 40)),
            float(np.linalg.norm(landmarks[1] - landmarks[0]) * rng.uniform(1.6, 2.2)),
            float(rng.uniform(-12, 12)),
        )
        shot = synth.Shot(photo, landmarks[None], 0, 1, pose, pose)
        frame, _ = synth.render_frame(shot, 0.0, (640, 480))
        frame = np.clip(frame * rng.uniform(0.7, 1.2), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"view{index:03d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    runner = CliRunner()
    for args in (["extract", str(folder), "--size", "256"], ["cluster", "--all"]):
        result = runner.invoke(cli_main, ["-w", str(root), *args])
        assert result.exit_code == 0, result.output


async def _next_frame(frames: list[float], seen: int, since: float, timeout: float = 3.0) -> float:
    """Milliseconds from `since` to the first frame produced after the first `seen` frames."""
    while time.perf_counter() - since < timeout:
        if len(frames) > seen:
            return (frames[seen] - since) * 1000
        await asyncio.sleep(0.0005)
    raise TimeoutError("no frame was produced")


async def measure(root: Path, presses: int, warm: bool, protocol: str) -> dict[str, float]:
    """Frame times (when Textual hands a finished frame to the terminal driver) and Pilot times."""
    app = ReelfaceApp(workspace.Workspace(root), Graphics(protocol, cell=(10, 20)))
    sent: list[int] = []  # bytes of image escapes per frame
    flush = app.pictures.flush

    def counted(spans=None) -> str:
        out = flush(spans)
        sent.append(len(out))
        return out

    app.pictures.flush = counted
    async with app.run_test(size=GRID) as pilot:
        frames: list[float] = []
        grid_ready: list[float] = []
        display = app._display

        def record(screen, renderable) -> None:
            if renderable is not None:
                frames.append(time.perf_counter())
                grid = (
                    getattr(app.screen, "grid", None)
                    if isinstance(app.screen, ReviewScreen)
                    else None
                )
                if grid is not None and len(grid._images) >= 24 and not grid_ready:
                    grid_ready.append(frames[-1])
            display(screen, renderable)

        app._display = record  # every frame passes here, headless or not
        await pilot.pause()
        # Under the review, as in the app: the identities (the dashboard refreshes every 2 s
        # while it is the screen right below, which would redraw, and resend, every picture).
        app.push_screen(IdentitiesScreen())
        await pilot.pause(0.3)
        await app.workers.wait_for_complete()
        await pilot.pause()
        biggest = max(identify.identities(app.conn), key=lambda i: i.faces)
        review = Review.load(app.conn, biggest.id)
        if warm:  # a page seen before: thumbnails read and pictures encoded (sixel, PNG)
            for face in review.visible[:48]:
                pixels = app.thumbs.load(face.crop_path)
                app.pictures.prepare(face.crop_path, pixels, *TILE_IMAGE)
        else:
            app.thumbs = ThumbCache(root)
        started = time.perf_counter()
        screen = ReviewScreen(biggest.id)  # reads the faces again, in its worker
        app.push_screen(screen)
        while not grid_ready and time.perf_counter() - started < 10:
            await asyncio.sleep(0.001)
        grid_ms = (grid_ready[0] - started) * 1000
        await pilot.pause()
        assert len([f for f in screen.grid.faces if f is not None]) == 24, screen.page_size
        frame_times, pilot_times = [], []
        page_bytes = sum(sent)
        sent.clear()
        for index in range(presses):
            key = "k" if index % 3 else "d"
            seen, before = len(frames), time.perf_counter()
            app.post_message(events.Key(key, key))
            frame_times.append(await _next_frame(frames, seen, before))
            await pilot.pause()
            before = time.perf_counter()
            await pilot.press(key)
            pilot_times.append((time.perf_counter() - before) * 1000)
        return {
            "faces": len(review.faces),
            "grid_ms": grid_ms,
            "key_frame_ms": statistics.median(frame_times),
            "key_frame_p90_ms": sorted(frame_times)[int(len(frame_times) * 0.9)],
            "key_pilot_ms": statistics.median(pilot_times),
            "page_kb": page_bytes / 1024,
            "key_kb": sum(sent) / 1024 / (2 * presses),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--graphics", default="halfblock,sixel,kitty")
    args = parser.parse_args()
    root = OUT / "tui-ws" / "ws"
    if not (root / "catalogue.sqlite").exists():
        build(root)
    console = Console(width=140)
    table = Table(title="review app, 128×32 headless (Pilot), this machine")
    columns = ("renderer", "thumbnails", "faces", "24-face grid drawn ms", "key → next frame ms",
               "p90 ms", "key via Pilot.press ms", "page escapes KB",
               "escapes per key KB")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    runs = [(protocol, warm) for protocol in args.graphics.split(",") for warm in (False, True)]
    for protocol, warm in runs:
        # A fresh copy each time, so decisions from the previous run do not pile up.
        scratch = Path(tempfile.mkdtemp()) / "ws"
        shutil.copytree(root, scratch)
        # The previous runs' apps are garbage: collected now, not in a full collection during
        # this run's page (one took 120 ms here, and made a cached page slower than a cold one).
        gc.collect()
        result = asyncio.run(measure(scratch, args.presses, warm, protocol))
        table.add_row(
            protocol,
            "cached" if warm else "from disk",
            str(result["faces"]),
            f"{result['grid_ms']:.0f}",
            f"{result['key_frame_ms']:.1f}",
            f"{result['key_frame_p90_ms']:.1f}",
            f"{result['key_pilot_ms']:.1f}",
            f"{result['page_kb']:.0f}",
            f"{result['key_kb']:.1f}",
        )
        shutil.rmtree(scratch.parent, ignore_errors=True)
    console.print(table)
    console.print(
        "targets: key → next face ≤ 50 ms, 24-face grid ≤ 150 ms. 'from disk': thumbnail JPEGs "
        "read and encoded (sixel, PNG) as the review opens; 'cached': read and "
        "encoded for the terminal before (a page seen again). Frame times run from the key "
        "(or the push of the review screen) to the frame Textual hands to the terminal driver; "
        "'via Pilot.press' adds Pilot's own wait for the app to go idle (~40 ms here even for a "
        "key nothing is bound to)."
    )


if __name__ == "__main__":
    main()
