"""How sharp a face looks in its delivered crop: the detail lost when the face is blurred again.

Measured on the inner face of the crop at the size it is delivered, or at the face's own source
resolution when the crop enlarges it (an enlarged face reads as soft as its source is), and as a
share of the face's own edge energy, so strong edges (glasses, wrinkles, hair) do not dominate.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from reelface.pipeline import align

# The inner face (brows, eyes, nose, mouth: no hair, no background) in FFHQ template units.
_P = align.FFHQ.points.astype(np.float64) / align.FFHQ.size
_IOD = float(_P[1, 0] - _P[0, 0])
INNER = (
    _P[0, 0] - 0.45 * _IOD,
    _P[0, 1] - 0.55 * _IOD,
    _P[1, 0] + 0.45 * _IOD,
    _P[3, 1] + 0.45 * _IOD,
)
# The re-blur: a Gaussian this wide, in measured pixels, removes most of what a sharp face has at
# its finest scale and little of a blurred one (0.8, 1.0, 1.2 tried on bench/quality.py's set).
REBLUR_SIGMA = 1.0
# Points per whole share lost: 100 stretched so that the cut measured on bench/quality.py's set
# (24.1 % lost: 2 % of good faces below it, 94 % of blurry ones) reads 25, the `blur` threshold
# every workspace config written before holds.
SCALE = 104.0
# Only the strongest gradients count (the edges of eyes, lids, nostrils, lips): grain and flat
# skin sit below them. The share of the region's pixels kept (0.1 beat 0.05, 0.2, 0.3 and all
# pixels; a light denoise first lost more blurry faces than it saved).
EDGE_SHARE = 0.10
# Directions in which the loss is measured; the least lost wins, so motion blur, which leaves
# detail across the motion, is still read as blurry along it (4 caught 93 %, 8 and 16 94 %).
DIRECTIONS = 8
# Smallest side measured: below it there is too little face to judge.
_MIN_SIDE = 24
_BUFFERS = threading.local()


def inner_region(crop: np.ndarray) -> np.ndarray:
    """The inner face of an FFHQ-aligned crop of any size, grey."""
    size = crop.shape[0]
    x1, y1, x2, y2 = (int(round(v * size)) for v in INNER)
    region = crop[y1:y2, x1:x2]
    return cv2.cvtColor(region, cv2.COLOR_RGB2GRAY) if region.ndim == 3 else region


def at_source_resolution(region: np.ndarray, upscale: float) -> np.ndarray:
    """The region shrunk back to the face's source resolution when the crop enlarged it."""
    if upscale <= 1.0:
        return region
    height, width = region.shape[:2]
    w, h = max(_MIN_SIDE, round(width / upscale)), max(_MIN_SIDE, round(height / upscale))
    return cv2.resize(region, (w, h), interpolation=cv2.INTER_AREA)


def _scratch(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Five float32 buffers of `shape`, kept per thread: fresh megabyte arrays for every face
    cost more in page faults than the arithmetic (5.6 against 1.1 ms at 1024 px)."""
    arrays = getattr(_BUFFERS, "arrays", None)
    if arrays is None or arrays[0].shape != shape:
        arrays = [np.empty(shape, np.float32) for _ in range(5)]
        _BUFFERS.arrays = arrays
    return arrays


def _tensor(gx: np.ndarray, gy: np.ndarray, weight: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """Sums of gx², gx·gy, gy² over the weighted (0/1) pixels: the energy in every direction.

    Every other row: the strongest edges run through many rows, so the sums keep their ratio
    (within 0.2 points here) at half the cost. einsum, not np.dot: BLAS threads left spinning
    slow OpenCV's threads down.
    """
    gx, gy, weight, tmp = gx[::2], gy[::2], weight[::2], tmp[::2]
    np.multiply(gx, weight, out=tmp)
    xx, xy = np.einsum("ij,ij->", tmp, gx), np.einsum("ij,ij->", tmp, gy)
    np.multiply(gy, weight, out=tmp)
    return np.array([xx, xy, np.einsum("ij,ij->", tmp, gy)], np.float64)


def reblur_sharpness(grey: np.ndarray) -> float:
    """The share of gradient energy at the strongest edges that a re-blur removes, in the
    direction where it removes least, in SCALE points (contrast-free: strong edges count as any)."""
    if grey.size < 16:
        return 0.0
    image, gx, gy, other, tmp = _scratch(grey.shape[:2])
    np.copyto(image, grey, casting="unsafe")
    cv2.Sobel(image, cv2.CV_32F, 1, 0, dst=gx, ksize=3)
    cv2.Sobel(image, cv2.CV_32F, 0, 1, dst=gy, ksize=3)
    # The squared magnitude, in NumPy: OpenCV's magnitude() rounds differently on its SIMD and
    # scalar paths, chosen by the buffers' alignment, so a pixel at the cut flipped and the same
    # crop measured 57.17 or 57.46 by where the heap put the buffers.
    np.multiply(gx, gx, out=other)
    np.multiply(gy, gy, out=tmp)
    np.add(other, tmp, out=other)
    sample = other.ravel()[::5]  # the cut from every fifth pixel: within a per cent, 5× cheaper
    k = int(sample.size * (1 - EDGE_SHARE))
    cut = np.partition(sample, k)[k]
    below = float(np.nextafter(cut, np.float32(-np.inf)))  # > below: at or above the cut
    weight = cv2.threshold(other, below, 1.0, cv2.THRESH_BINARY)[1]
    before = _tensor(gx, gy, weight, tmp)
    if before[0] + before[2] < 1e-3 * float(weight.sum()):  # flat: no edge, nothing sharp
        return 0.0
    cv2.GaussianBlur(image, (0, 0), REBLUR_SIGMA, dst=other)
    cv2.Sobel(other, cv2.CV_32F, 1, 0, dst=gx, ksize=3)
    cv2.Sobel(other, cv2.CV_32F, 0, 1, dst=gy, ksize=3)
    after = _tensor(gx, gy, weight, tmp)
    angles = np.linspace(0, np.pi, DIRECTIONS, endpoint=False)
    c, s = np.cos(angles), np.sin(angles)
    weights = np.stack([c * c, 2 * c * s, s * s])  # energy along each direction: w · tensor
    lost = 1.0 - (after @ weights) / np.maximum(before @ weights, 1e-9)
    return SCALE * float(max(lost.min(), 0.0))


def crop_sharpness(crop: np.ndarray, upscale: float) -> float:
    """Sharpness of an FFHQ-aligned crop as delivered (`upscale`: crop pixels per source pixel)."""
    return reblur_sharpness(at_source_resolution(inner_region(crop), upscale))


def laplacian_variance(grey: np.ndarray) -> float:
    """The old tool's measure: variance of the Laplacian (dominated by the strongest edges)."""
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())
