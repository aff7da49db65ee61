"""Crops cut from a film frame's RGBA (as extraction cuts them) are those cut from its RGB."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reelface import synth
from reelface.pipeline import align


@pytest.fixture(scope="module")
def photo() -> tuple[np.ndarray, np.ndarray]:
    """insightface's group photo and the landmarks of its faces."""
    name = "insightface_t1"
    return synth.load_photo(synth.package_photos()[name]), synth.package_landmarks()[name]


@pytest.mark.parametrize("size", [1024, 256, 112])
@pytest.mark.parametrize("tilt", [0.0, 25.0])
@pytest.mark.parametrize("zoom", [1, 4])  # faces enlarged 5–6× at 1024, and reduced
def test_crops_from_rgba_are_the_crops_from_rgb(photo, size: int, tilt: float, zoom: int) -> None:
    rgb, landmarks = photo
    rgb = cv2.resize(rgb, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    landmarks = landmarks * zoom
    rgba = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    turn = cv2.getRotationMatrix2D((size / 2, size / 2), tilt, 1.0)  # the face turned in its crop
    for face in landmarks:  # reduced and enlarged, some reaching past the photo's edge
        matrix = align.compose(turn, align.align_matrix(face, align.FFHQ, size))
        bilinear = align.warp(rgba, matrix, size, fine=False)
        assert bilinear.shape == (size, size, 3)
        assert np.array_equal(bilinear, align.warp(rgb, matrix, size, fine=False))
        bicubic, expected = align.warp(rgba, matrix, size), align.warp(rgb, matrix, size)
        # The face's region alone is converted; OpenCV's fixed-point sample positions may then
        # round a few pixels one level apart.
        off = np.abs(bicubic.astype(int) - expected)
        assert off.max() <= 1 and (off > 0).mean() < 1e-3
        smooth = align.warp_smooth(rgba, matrix, size)
        assert np.array_equal(smooth, align.warp_smooth(rgb, matrix, size))


def test_shrink_by_halvings_matches_one_area_average(photo) -> None:
    # A stored 1024 crop shrunk to the 256 analysis crop: the same picture, a level apart at most.
    rgb, landmarks = photo
    crop = align.warp(rgb, align.align_matrix(landmarks[0], align.FFHQ, 1024), 1024)
    fast = align.shrink(crop, 256)
    once = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_AREA)
    assert fast.shape == once.shape == (256, 256, 3)
    assert int(np.abs(fast.astype(int) - once).max()) <= 1
    part = crop[:768, :768]  # not a power of two: one area average, as before
    expected = cv2.resize(part, (256, 256), interpolation=cv2.INTER_AREA)
    assert np.array_equal(align.shrink(part, 256), expected)
