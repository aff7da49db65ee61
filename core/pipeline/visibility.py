"""Whether the face's features can be seen: detail at the eyes, nose and mouth against the face's.

A hand, a glove, a towel, a helmet's visor or dark glasses over a feature replace the feature's
fine structure (lids, lashes, nostrils, lip lines) by a surface with little of it, while the
rest of the face keeps its own. The measure is the detail energy (a difference of Gaussians at
0.03–0.08 eye distances: feature lines, not pixel noise, not shading) in each feature's box of
the 256 px analysis crop, divided by that of the whole inner face, and by the ratio a visible
feature has (1.2, the median on the good faces of bench/quality.py); the face's value is its
least visible feature, ≈ 1 when all are visible.

Chosen by measurement on the labelled set (bench/quality.py, seeds 0 and 1, found faces):
good faces 0.41–1.0 (lowest 0.405 / 0.414), faces under hands, towels, helmets and dark bars
mostly 0.04–0.15, 65 of 69 below 0.36. The alternatives measured on the same faces separate
far less: the detector score (good 0.66–0.86, occluded 0.42–0.80), the embedder's raw
descriptor norm (good 1.25–1.57, occluded 1.26–1.55: dlib's ResNet keeps no quality in it),
and the cosine distance to the identity's centroid (good ≤ 0.033, occluded the embedder did not
already cluster apart 0.012–0.062; identity.recognised uses it, conservatively, at clustering).
A wider band (0.05–0.15) let the edge of a dark bar over the eyes light up the eye boxes.
"""

from __future__ import annotations

import cv2
import numpy as np

from reelface.models.base import AlignTemplate

BAND = (0.03, 0.08)  # the detail band's Gaussian widths, in eye distances
# Each feature's box: (centre as a mix of the five template points, width, height in eye
# distances). The nose box sits a little above the tip, on the bridge and nostrils.
_BOXES = {
    "left eye": ((1, 0, 0, 0, 0), 0.45, 0.25, 0.0),
    "right eye": ((0, 1, 0, 0, 0), 0.45, 0.25, 0.0),
    "nose": ((0, 0, 1, 0, 0), 0.5, 0.5, -0.1),
    "mouth": ((0, 0, 0, 0.5, 0.5), 1.0, 0.45, 0.0),
}
INNER = 1.6  # side of the inner-face square (centred on eyes and mouth), in eye distances
TYPICAL = 1.2  # a visible feature's ratio to the inner face (good faces of the labelled set)
FLAT = 0.5  # inner-face detail below this (grey levels RMS) leaves nothing to compare


def _box_mean(energy: np.ndarray, centre: np.ndarray, width: float, height: float) -> float:
    x1, y1 = int(round(centre[0] - width / 2)), int(round(centre[1] - height / 2))
    x2, y2 = x1 + max(int(round(width)), 1), y1 + max(int(round(height)), 1)
    part = energy[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)]
    return float(part.mean()) if part.size else 0.0


def features(grey: np.ndarray, template: AlignTemplate) -> dict[str, float]:
    """Each feature's visibility (≈ 1 visible, near 0 covered) on a crop aligned to `template`."""
    p = template.points.astype(np.float64)
    iod = float(np.linalg.norm(p[1] - p[0]))
    g = grey.astype(np.float32)
    band = cv2.GaussianBlur(g, (0, 0), BAND[0] * iod) - cv2.GaussianBlur(g, (0, 0), BAND[1] * iod)
    energy = band * band
    centre = (p[0] + p[1] + p[3] + p[4]) / 4
    face = np.sqrt(_box_mean(energy, centre, INNER * iod, INNER * iod))
    if face < FLAT:  # no detail anywhere (a blank or wholly smeared crop): the blur rule's case
        return dict.fromkeys(_BOXES, 1.0)
    out = {}
    for name, (mix, width, height, lift) in _BOXES.items():
        at = np.asarray(mix, np.float64) @ p + (0.0, lift * iod)
        local = np.sqrt(_box_mean(energy, at, width * iod, height * iod))
        out[name] = local / face / TYPICAL
    return out


def visibility(grey: np.ndarray, template: AlignTemplate) -> tuple[float, str]:
    """The least visible feature's value and its name."""
    scores = features(grey, template)
    name = min(scores, key=scores.__getitem__)
    return scores[name], name
