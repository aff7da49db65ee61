"""Paste a swapped aligned crop back into its photo through a feathered mask.

SimSwap erodes and blurs its paste mask by fixed pixel counts (40 and 41 px), which leaves seams
on large faces and eats small ones; here both scale with the face's size in the photo (the crop
side divided by the alignment's scale), and only the face's neighbourhood is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reelface.pipeline import align


@dataclass(frozen=True)
class Feather:
    """Mask shape as fractions of the face's side in the photo."""

    erode: float = 0.04  # the hard edge pulled in from the crop's border
    blur: float = 0.04  # Gaussian sigma of the soft edge


def face_side(matrix: np.ndarray, crop_size: int) -> float:
    """The aligned crop's side measured in photo pixels."""
    return crop_size / align.scale_of(matrix)


def paste_mask(matrix: np.ndarray, crop_size: int, shape: tuple[int, int], feather: Feather):
    """(float32 alpha in [0, 1] over the region, region as (x0, y0, x1, y1)) for `shape` (h, w)."""
    side = face_side(matrix, crop_size)
    sigma = max(0.5, feather.blur * side)
    # A further 2.5 σ inwards keeps the blur's tail inside the crop (alpha < 1 % at its border).
    erode = max(1, int(round(feather.erode * side + 2.5 * sigma)))
    inverse = align.invert(matrix)
    corners = align.apply(inverse, np.array([[0, 0], [crop_size, 0], [0, crop_size],
                                             [crop_size, crop_size]], np.float64))  # fmt: skip
    pad = int(np.ceil(3 * sigma)) + 2
    h, w = shape
    x0, y0 = (max(0, int(np.floor(v)) - pad) for v in corners.min(0))
    x1, y1 = (min(n, int(np.ceil(v)) + pad) for v, n in zip(corners.max(0), (w, h), strict=True))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), np.float32), (0, 0, 0, 0)
    local = inverse.copy()
    local[:, 2] -= (x0, y0)
    square = np.full((crop_size, crop_size), 255, np.uint8)
    mask = cv2.warpAffine(square, local, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
    mask = cv2.erode((mask > 127).astype(np.uint8) * 255, np.ones((2 * erode + 1,) * 2, np.uint8))
    mask = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
    return np.clip(mask, 0.0, 1.0), (x0, y0, x1, y1)


def paste_back(
    photo: np.ndarray, crop: np.ndarray, matrix: np.ndarray, feather: Feather | None = None
) -> np.ndarray:
    """`photo` with `crop` (aligned by `matrix`, photo → crop) blended in; a new array."""
    feather = feather or Feather()
    size = crop.shape[0]
    alpha, (x0, y0, x1, y1) = paste_mask(matrix, size, photo.shape[:2], feather)
    out = photo.copy()
    if alpha.size == 0:
        return out
    local = align.invert(matrix)
    local[:, 2] -= (x0, y0)
    back = cv2.warpAffine(
        crop, local, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    region = out[y0:y1, x0:x1].astype(np.float32)
    a = alpha[..., None]
    blended = back.astype(np.float32) * a + region * (1 - a)
    out[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out
