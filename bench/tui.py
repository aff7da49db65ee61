"""How fast the review app answers: a decision key to the next face shown, and a 24-face grid drawn.

Builds (once, in bench/out) a workspace whose largest identity holds ~200 faces of one real
person, made by the real pipeline from package photos, then drives the app headless with Pilot.

    python bench/tui.py [--presses 40]
"""

from __future__ import annotations

import argparse
import asyncio
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
from textual.screen import Screen

from reelface import identify, synth, workspace
from reelface.cli import main as cli_main
from reelface.tui.app import ReelfaceApp
from reelface.tui.model import Review
from reelface.tui.screens.review import ReviewScreen
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


async def measure(root: Path, presses: int, warm: bool) -> dict[str, float]:
    app = ReelfaceApp(workspace.Workspace(root))
    async with app.run_test(size=GRID) as pilot:
        await pilot.pause()
        biggest = max(identify.identities(app.conn), key=lambda i: i.faces)
        review = Review(app.conn, biggest.id)
        if warm:
            for face in review.visible[:48]:
                app.thumbs.load(face.crop_path)
        else:
            app.thumbs = ThumbCache(root)
        started = time.perf_counter()
        screen = ReviewScreen(review)
        await app.push_screen(screen)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        grid_ms = (time.perf_counter() - started) * 1000
        assert len([f for f in screen.grid.faces if f is not None]) == 24, screen.page_size
        times, idle = [], []
        for index in range(presses):
            # Pilot's own round trip, measured with a key nothing is bound to, in between.
            before = time.perf_counter()
            await pilot.press("z")
            idle.append((time.perf_counter() - before) * 1000)
            before = time.perf_counter()
            await pilot.press("k" if index % 3 else "d")
            times.append((time.perf_counter() - before) * 1000)
        # The same for an empty screen: what pushing any screen costs Pilot and Textual here.
        started = time.perf_counter()
        await app.push_screen(Screen())
        await pilot.pause()
        empty_ms = (time.perf_counter() - started) * 1000
        return {
            "faces": len(review.faces),
            "grid_ms": grid_ms,
            "empty_ms": empty_ms,
            "key_median_ms": statistics.median(times),
            "idle_median_ms": statistics.median(idle),
            "key_p90_ms": sorted(times)[int(len(times) * 0.9)],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=40)
    args = parser.parse_args()
    root = OUT / "tui-ws" / "ws"
    if not (root / "catalogue.sqlite").exists():
        build(root)
    console = Console(width=140)
    table = Table(title="review app, 128×32 headless (Pilot), this machine")
    columns = ("thumbnails", "faces", "24-face grid ms", "empty screen ms", "key → next face ms",
               "unbound key ms", "key − unbound ms", "p90 ms")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for warm in (False, True):
        # A fresh copy each time, so decisions from the previous run do not pile up.
        scratch = Path(tempfile.mkdtemp()) / "ws"
        shutil.copytree(root, scratch)
        result = asyncio.run(measure(scratch, args.presses, warm))
        table.add_row(
            "cached" if warm else "from disk",
            str(result["faces"]),
            f"{result['grid_ms']:.0f}",
            f"{result['empty_ms']:.0f}",
            f"{result['key_median_ms']:.1f}",
            f"{result['idle_median_ms']:.1f}",
            f"{result['key_median_ms'] - result['idle_median_ms']:.1f}",
            f"{result['key_p90_ms']:.1f}",
        )
        shutil.rmtree(scratch.parent, ignore_errors=True)
    console.print(table)
    console.print(
        "targets: key → next face ≤ 50 ms, 24-face grid ≤ 150 ms. Medians of "
        f"{args.presses} presses; 'unbound key' is Pilot's round trip for a key nothing handles."
    )


if __name__ == "__main__":
    main()
