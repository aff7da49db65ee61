"""The fast picture path: the vectorised sixel encoder writes what a loop per band wrote (its
speed is bench/tui.py's), and a new page's pictures are made before its first frame, not after."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from reelface import workspace
from reelface.catalogue.schema import open_catalogue
from reelface.pipeline import thumbs
from reelface.tui.app import ReelfaceApp
from reelface.tui.graphics import sixel
from reelface.tui.graphics.detect import Graphics
from reelface.tui.model import Review
from reelface.tui.screens.review import TILE_IMAGE, ReviewScreen


def reference_encode(rgb: np.ndarray, colours: int = 255) -> str:
    """The encoder this one replaced: one Python pass per band and colour, regex runs."""
    run = re.compile(rb"([?-~])\1{3,}")
    height, width = rgb.shape[:2]
    indices, palette = sixel.quantise(rgb, min(colours, 255))
    pad = (-height) % 6
    if pad:
        indices = np.vstack([indices, np.full((pad, width), 255, np.uint8)])
    percent = (palette.astype(np.int32) * 100 + 127) // 255
    out = [b'\x1bP0;1;0q"1;1;%d;%d' % (width, height)]
    out += [b"#%d;2;%d;%d;%d" % (i, r, g, b) for i, (r, g, b) in enumerate(percent.tolist())]
    weights = (1 << np.arange(6, dtype=np.uint8))[:, None]
    for top in range(0, indices.shape[0], 6):
        band = indices[top : top + 6]
        present = np.unique(band)
        present = present[present < len(palette)]
        masks = band[None, :, :] == present[:, None, None]
        values = (masks * weights[None]).sum(axis=1, dtype=np.uint8) + 63
        band_bytes = b"$".join(
            b"#%d" % colour + row.tobytes().rstrip(b"?")
            for colour, row in zip(present.tolist(), values, strict=True)
        )
        out.append(run.sub(lambda m: b"!%d%c" % (len(m.group(0)), m.group(0)[0]), band_bytes))
        out[-1] += b"-"
    out.append(b"\x1b\\")
    return b"".join(out).decode("ascii")


def face(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Gradients, a disc and a little noise: many colours, long runs and short ones."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                    np.full_like(xx, 90)], -1).astype(np.uint8)  # fmt: skip
    cv2.circle(rgb, (width // 2, height // 2), min(width, height) // 3, (230, 180, 150), -1)
    noise = np.random.default_rng(seed).integers(-6, 7, rgb.shape)
    return np.clip(rgb.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "shape",
    [(138, 140), (37, 50), (1, 1), (6, 1), (7, 3), (13, 2000), (90, 84)],
)
def test_sixel_bytes_match_the_per_band_encoder(shape: tuple[int, int]) -> None:
    rgb = face(*shape)
    assert sixel.encode(rgb) == reference_encode(rgb)
    flat = np.full((*shape, 3), 200, np.uint8)  # one colour: a run per line
    assert sixel.encode(flat) == reference_encode(flat)
    noise = np.random.default_rng(3).integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert sixel.encode(noise) == reference_encode(noise)  # 255 colours, runs of one


def test_sixel_refuses_a_width_its_runs_cannot_count() -> None:
    with pytest.raises(ValueError, match="wide"):
        sixel.encode(np.zeros((1, sixel.MAX_WIDTH + 1, 3), np.uint8))


def open_review(root: Path, protocol: str) -> tuple[list[tuple[list[str], list[str]]], dict]:
    """Open the review of identity 1 with the loader thread left out: what it was asked to do,
    and which page faces had their pictures ready when the page was first shown."""
    asked: list[tuple[list[str], list[str]]] = []
    seen: dict[str, object] = {}

    async def main_() -> None:
        app = ReelfaceApp(workspace.Workspace(root), Graphics(protocol, cell=(10, 20)))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            screen = ReviewScreen(1)
            screen.load_thumbs = lambda needed, upcoming, columns=8: asked.append(
                (needed, upcoming)
            )
            app.push_screen(screen)
            for _ in range(200):
                if screen.review is not None:
                    break
                await pilot.pause(0.01)
            page = [f for f in screen.grid.faces if f is not None]
            seen["page"] = [f.crop_path for f in page]
            seen["ready"] = [
                app.thumbs.cached(p) is not None and app.pictures.ready(p, *TILE_IMAGE)
                for p in seen["page"]
            ]

    asyncio.run(main_())
    return asked, seen


@pytest.mark.parametrize("protocol", ["sixel", "kitty"])
def test_a_new_page_is_encoded_before_its_first_frame(seeded: Path, protocol: str) -> None:
    asked, seen = open_review(seeded, protocol)
    assert seen["page"] and all(seen["ready"])  # no loader thread needed for the page
    assert all(not needed for needed, _ in asked)


def test_a_thumbnail_still_to_be_made_is_left_to_the_loader(seeded: Path) -> None:
    conn = open_catalogue(workspace.Workspace(seeded).catalogue_path)
    crop = Review.load(conn, 1).visible[0].crop_path  # the first face on the first page
    conn.close()
    thumbs.thumb_path(seeded, crop).unlink()  # decoding the crop takes ~90 ms: not on the UI
    asked, seen = open_review(seeded, "sixel")
    assert crop in seen["page"]
    assert [p for p, ready in zip(seen["page"], seen["ready"], strict=True) if not ready] == [crop]
    assert asked and asked[0][0] == [crop]
    assert thumbs.read_thumb(seeded, crop) is None
    assert thumbs.load_thumb(seeded, crop).shape == (thumbs.SIZE, thumbs.SIZE, 3)
    assert thumbs.read_thumb(seeded, crop) is not None  # made, and written for next time
