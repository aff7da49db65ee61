"""Detection in two passes: the whole frame small to find faces, then each face for landmarks."""

from __future__ import annotations

import numpy as np

from reelface.config import Config
from reelface.models.base import Detection, Detector
from reelface.pipeline import align

# The eye distance, in detector input pixels, from which SCRFD finds faces reliably (it is
# trained on WIDER FACE down to ~10 px faces; 16 px keeps a margin for blur and turned heads).
MIN_DETECT_IOD = 16.0
MIN_DETECT_SIZE, MAX_DETECT_SIZE = 128, 1280
# Side of the region re-detected around a face, in face boxes: room for the box to be wrong.
# With `refine_size` 256 this gives the face as many input pixels as 2.0 boxes at 320 did, at
# 60 % of the cost; landmarks against bench/extract.py's truth moved by under 0.1 px at 1024.
REFINE_CONTEXT = 1.6
# A re-detection may score lower than the first pass: the face now fills much of the input.
REFINE_THRESHOLD_SHARE = 0.8


def coarse_size(config: Config, frame_shape: tuple[int, ...]) -> int:
    """Coarse input size: the smallest at which the smallest keepable face is still found.

    A face we may keep has at least the template's eye distance divided by the largest
    enlargement; shrunk to `MIN_DETECT_IOD` pixels it is still detected reliably, so a 1080p
    frame for 1024 px crops needs only a 192 px input. `detect_size` overrides when non-zero.
    """
    ext = config.extract
    longest = max(frame_shape[:2])
    if ext.detect_size:
        size = ext.detect_size
    else:
        points = align.FFHQ.scaled(ext.size).points
        min_iod = float(points[1, 0] - points[0, 0]) / config.rules.max_upscale
        size = longest * MIN_DETECT_IOD / max(min_iod, 1e-6)
    size = int(np.ceil(max(size, MIN_DETECT_SIZE) / 32) * 32)
    return min(size, int(np.ceil(longest / 32) * 32), MAX_DETECT_SIZE)


def _side(det: Detection) -> float:
    return float(max(det.box[2] - det.box[0], det.box[3] - det.box[1]))


def _region(det: Detection, side: int) -> np.ndarray:
    """Image → square input centred on the face, `REFINE_CONTEXT` boxes wide."""
    centre = (det.box[:2] + det.box[2:]) / 2
    scale = side / max(REFINE_CONTEXT * _side(det), 1.0)
    return np.array(
        [[scale, 0, side / 2 - scale * centre[0]], [0, scale, side / 2 - scale * centre[1]]]
    )


def _nearest_centre(found: list[Detection], side: int) -> Detection | None:
    """The re-detection nearest the input's centre, where the face was put."""
    if not found:
        return None
    centre = np.array([side / 2, side / 2])
    return min(found, key=lambda d: float(np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - centre)))


def scaled(det: Detection, scale: np.ndarray) -> Detection:
    """A detection in an image resized by 1 / `scale` (x, y), mapped back to the original."""
    return _mapped(det, np.array([[scale[0], 0.0, 0.0], [0.0, scale[1], 0.0]]))


def _mapped(det: Detection, matrix: np.ndarray) -> Detection:
    corners = align.apply(matrix, det.box.reshape(2, 2))
    return Detection(
        corners.reshape(4).astype(np.float32),
        det.score,
        align.apply(matrix, det.landmarks).astype(np.float32),
    )


def refine(
    detector: Detector,
    images: list[np.ndarray],
    faces: list[Detection],
    side: int,
    threshold: float,
) -> list[Detection]:
    """Each face re-detected in a `side` px square around it (one batch): precise landmarks.

    A face the second pass misses keeps its first detection.
    """
    if not faces:
        return []
    regions = [_region(face, side) for face in faces]
    crops = [
        align.warp(image, region, side, fine=False)
        for image, region in zip(images, regions, strict=True)
    ]
    found = detector.detect(crops, side, threshold * REFINE_THRESHOLD_SHARE)
    out = []
    for face, region, again in zip(faces, regions, found, strict=True):
        best = _nearest_centre(again, side)
        out.append(_mapped(best, align.invert(region)) if best else face)
    return out


def largest(faces: list[Detection]) -> Detection | None:
    """The face with the largest box, or None."""
    return max(faces, key=lambda d: float(np.prod(d.box[2:] - d.box[:2])), default=None)
