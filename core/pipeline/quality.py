"""The lab's hand-cleaning rules measured for every face: pure functions of geometry and pixels."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from reelface.models.base import AlignTemplate
from reelface.pipeline import align

# Sharpness is measured on the face alone, grey, at this fixed scale, so one threshold means the
# same whatever the output size or the face's size in the film.
ANALYSIS = align.FFHQ.scaled(256)
# The region of the analysis crop that holds brows, eyes, nose and mouth (no hair, no background).
_P = ANALYSIS.points
_IOD = float(_P[1, 0] - _P[0, 0])
SHARP_BOX = (
    int(_P[0, 0] - 0.45 * _IOD),
    int(_P[0, 1] - 0.55 * _IOD),
    int(_P[1, 0] + 0.45 * _IOD),
    int(_P[3, 1] + 0.45 * _IOD),
)
# The detector's box covers brow to chin; the lab's "face" is the whole head outline a person
# sees. This factor grows the box to that outline so that correctly aligned FFHQ crops of the
# package photos score 0.58–0.71, and a face shown at under ~80 % of its proper size (wrong
# landmarks, or displaced) falls below the lab's 40 % (tests/test_quality.py checks both).
FACE_EXTENT = 1.30
# Ratio of nose protrusion to half the eye distance on an average head; turns the nose's
# sideways offset into a yaw angle.
NOSE_DEPTH = 1.1


@dataclass(frozen=True)
class Thresholds:
    """Each rule's limit; every face failing one gets the rule's reason."""

    blur: float = 25.0  # sharpness below this → blurry
    roll: float = 30.0  # |eye-line angle| above this, degrees → tilted
    face_area: float = 0.40  # share of the crop the face covers, below → small
    # Smallest source resolution as a share of the crop's (the CLI's --min-face): a face
    # enlarged more than 1/min_face times into its crop is too small to keep.
    min_face: float = 0.7
    outside: float = 0.10  # share of the face box outside the frame above → incomplete
    padding: float = 0.40  # share of the crop that is padding above → incomplete
    score: float = 0.55  # detector confidence below → incomplete (occluded or not a face)
    # Landmark error after alignment, in eye distances; turned heads reach 0.2 with correct
    # landmarks (measured on the demo film), landmark failures go far beyond.
    residual: float = 0.30
    profile: float = 55.0  # |yaw| above, degrees → profile (a note, not a discard rule)

    @property
    def max_upscale(self) -> float:
        return 1 / self.min_face


@dataclass(frozen=True)
class Measures:
    """Every number behind the rules, stored with the face."""

    score: float
    upscale: float
    roll: float
    yaw: float
    sharpness: float
    face_area: float
    outside: float
    padding: float
    residual: float
    landmarks_outside: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# Reasons that suggest discarding; "profile" is recorded but acceptable under the lab's rules.
DISCARD_REASONS = ("blurry", "tilted", "small", "incomplete", "misaligned")
ALL_REASONS = (*DISCARD_REASONS, "profile")


def roll_degrees(landmarks: np.ndarray) -> float:
    """Eye-line angle from horizontal in the source image, degrees (positive = clockwise)."""
    dx, dy = landmarks[1] - landmarks[0]
    return math.degrees(math.atan2(dy, dx))


def yaw_degrees(landmarks: np.ndarray) -> float:
    """Yaw from the nose tip's sideways offset against the eye and mouth midline, roll removed."""
    eyes_mid = (landmarks[0] + landmarks[1]) / 2
    mouth_mid = (landmarks[3] + landmarks[4]) / 2
    axis = landmarks[1] - landmarks[0]
    half_iod = np.linalg.norm(axis) / 2
    if half_iod < 1e-6:
        return 90.0
    unit = axis / (2 * half_iod)
    midline = (eyes_mid + mouth_mid) / 2
    offset = float(np.dot(landmarks[2] - midline, unit)) / half_iod
    return math.degrees(math.atan(offset / NOSE_DEPTH))


def sharpness(analysis_grey: np.ndarray) -> float:
    """Variance of the Laplacian over the inner face of a 256 px FFHQ-aligned grey crop."""
    x1, y1, x2, y2 = SHARP_BOX
    region = analysis_grey[y1:y2, x1:x2]
    return float(cv2.Laplacian(region, cv2.CV_64F).var())


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _clip_area(quad: np.ndarray, width: float, height: float) -> float:
    """Area of a convex quadrilateral inside the rectangle [0,width]×[0,height]."""
    inside, _ = cv2.intersectConvexConvex(
        quad.astype(np.float32),
        np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32),
    )
    return float(inside)


def _box_corners(box: np.ndarray, grow: float = 1.0) -> np.ndarray:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) * grow / 2, (box[3] - box[1]) * grow / 2
    return np.array(
        [[cx - hw, cy - hh], [cx + hw, cy - hh], [cx + hw, cy + hh], [cx - hw, cy + hh]]
    )


def face_area(box: np.ndarray, matrix: np.ndarray, size: int) -> float:
    """Share of the crop covered by the face outline (the grown detector box mapped into it)."""
    quad = align.apply(matrix, _box_corners(box, FACE_EXTENT))
    return _clip_area(quad, size, size) / (size * size)


def outside_share(box: np.ndarray, frame_shape: tuple[int, int]) -> float:
    """Share of the detector box that lies outside the frame (a face cut by the frame edge)."""
    quad = _box_corners(box)
    total = _polygon_area(quad)
    if total <= 0:
        return 1.0
    return 1.0 - _clip_area(quad, frame_shape[1], frame_shape[0]) / total


def padding_share(matrix: np.ndarray, size: int, frame_shape: tuple[int, int]) -> float:
    """Share of the crop whose pixels come from outside the frame (black padding)."""
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64)
    in_frame = align.apply(align.invert(matrix), corners)
    height, width = frame_shape
    covered = _clip_area(in_frame, width, height) / max(_polygon_area(in_frame), 1e-9)
    return 1.0 - covered


def residual(landmarks: np.ndarray, matrix: np.ndarray, template: AlignTemplate) -> float:
    """RMS distance of the warped landmarks from the template, in template eye distances."""
    mapped = align.apply(matrix, landmarks)
    error = np.sqrt(((mapped - template.points) ** 2).sum(1).mean())
    return float(error / np.linalg.norm(template.points[1] - template.points[0]))


def measure(
    box: np.ndarray,
    score: float,
    landmarks: np.ndarray,
    matrix: np.ndarray,
    size: int,
    frame_shape: tuple[int, int],
    analysis_grey: np.ndarray,
) -> Measures:
    """All measures of one face, given its crop matrix (source → `size` FFHQ crop)."""
    height, width = frame_shape
    x, y = landmarks[:, 0], landmarks[:, 1]
    outside_points = int(((x < 0) | (y < 0) | (x >= width) | (y >= height)).sum())
    return Measures(
        score=float(score),
        upscale=align.scale_of(matrix),
        roll=roll_degrees(landmarks),
        yaw=yaw_degrees(landmarks),
        sharpness=sharpness(analysis_grey),
        face_area=face_area(box, matrix, size),
        outside=outside_share(box, frame_shape),
        padding=padding_share(matrix, size, frame_shape),
        residual=residual(landmarks, matrix, align.FFHQ.scaled(size)),
        landmarks_outside=outside_points,
    )


def reasons(m: Measures, t: Thresholds) -> list[str]:
    """Human-readable reasons, one per failed rule, each starting with the rule's key word."""
    out = []
    if m.sharpness < t.blur:
        out.append(f"blurry: sharpness {m.sharpness:.1f} < {t.blur:g}")
    if abs(m.roll) > t.roll:
        out.append(f"tilted: eye line {m.roll:+.0f}° (limit ±{t.roll:g}°)")
    if m.face_area < t.face_area:
        out.append(f"small: face covers {m.face_area:.0%} of the crop (< {t.face_area:.0%})")
    if m.landmarks_outside:
        out.append(f"incomplete: {m.landmarks_outside} landmark(s) outside the frame")
    elif m.outside > t.outside:
        out.append(f"incomplete: {m.outside:.0%} of the face is outside the frame")
    elif m.padding > t.padding:
        out.append(f"incomplete: {m.padding:.0%} of the crop is padding")
    elif m.score < t.score:
        out.append(f"incomplete: detector score {m.score:.2f} < {t.score:g} (occluded?)")
    if m.residual > t.residual:
        out.append(f"misaligned: landmarks {m.residual:.2f} eye distances off the template")
    if abs(m.yaw) > t.profile:
        out.append(f"profile: yaw about {m.yaw:+.0f}°")
    return out


def reason_keys(texts: list[str]) -> list[str]:
    return [text.split(":", 1)[0] for text in texts]


def passes(texts: list[str]) -> bool:
    """A face passes when no discard rule fired (profile alone is fine)."""
    return not any(key in DISCARD_REASONS for key in reason_keys(texts))
