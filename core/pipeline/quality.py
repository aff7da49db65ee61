"""The lab's hand-cleaning rules measured for every face: pure functions of geometry and pixels."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from reelface.models.base import AlignTemplate
from reelface.pipeline import align
from reelface.pipeline import landmarks as lm
from reelface.pipeline import sharpness as sharp
from reelface.pipeline import visibility as vis

# The preview and embedding crop; the old Laplacian measure (kept as `laplacian`) is taken on it.
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

    # Sharpness (detail a re-blur removes, on the crop as delivered; sharpness.py) below this →
    # blurry. The scale puts the cut at 25, the number every older workspace config holds.
    blur: float = 25.0
    roll: float = 30.0  # |eye-line angle| above this, degrees → tilted
    face_area: float = 0.40  # share of the crop the face covers, below → small
    # Smallest source resolution as a share of the crop's (the CLI's --min-face): a face
    # enlarged more than 1/min_face times into its crop is too small to keep.
    min_face: float = 0.7
    outside: float = 0.10  # share of the face box outside the frame above → incomplete
    # Share of the inner face (brows to mouth, as the crop places it) outside the frame above →
    # incomplete: the detector's box shrinks to what it sees, so it misses a face cut at an eye.
    cut: float = 0.10
    padding: float = 0.40  # share of the crop that is padding above → incomplete
    score: float = 0.55  # detector confidence below → incomplete (occluded or not a face)
    # Landmark error after alignment, in eye distances; turned heads reach 0.2 with correct
    # landmarks (measured on the demo film), landmark failures go far beyond.
    residual: float = 0.30
    # The points' distance from the mean face turned to their own yaw and best nod (landmarks.py),
    # in eye distances, above → misaligned: one point gone astray, which the fit hides (correct
    # faces of bench/quality.py ≤ 0.075, spoiled ones mostly 0.11–0.26).
    shape: float = 0.12
    # Face area above this share of the crop → misaligned: landmarks that claim a face smaller
    # than it is zoom the crop into it (correct crops: 0.58–0.71).
    zoomed: float = 0.90
    profile: float = 55.0  # |yaw| above, degrees → profile (a note, not a discard rule)
    # Near-duplicates in one track: grey-thumbnail correlation at or above this (and the same
    # person by the embedder) → all but the best face get "duplicate"; 0 turns it off.
    duplicate: float = 0.97
    # Visibility of the least visible feature (eyes, nose, mouth; visibility.py: ≈ 1 visible)
    # below this → occluded. Good faces of bench/quality.py ≥ 0.40, covered features mostly
    # 0.04–0.15 (hands, towels, helmets, dark glasses).
    occluded: float = 0.36
    # At clustering (identity/recognised.py): a face further from its identity's centroid than
    # this share of the embedder's same-person distance, and an outlier of its identity, →
    # occluded (its own identity does not recognise it); re-clustering refreshes it. 0 = off.
    unrecognised: float = 0.6

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
    # Added with the landmark and delivered-size sharpness rules; rows written before lack them
    # (their `sharpness` is the old Laplacian variance), hence the defaults.
    laplacian: float = -1.0  # the old measure, variance of the Laplacian on the 256 px crop
    mouth_below: float = 1.0  # the landmarks' shape in the eye-line frame (landmarks.Shape)
    mouth_along: float = 1.0
    nose_side: float = 0.0
    nose_drop: float = 0.55
    eye_span: float = 1.0
    face_cut: float = 0.0  # share of the inner face outside the frame
    shape_residual: float = 0.0  # distance from the mean face at this yaw (landmarks.py)
    # Each feature's visibility (visibility.py); rows from before the occlusion rule: visible.
    left_eye: float = 1.0
    right_eye: float = 1.0
    nose: float = 1.0
    mouth: float = 1.0

    @property
    def hidden(self) -> tuple[float, str]:
        """The least visible feature: its visibility and name."""
        named = {"left eye": self.left_eye, "right eye": self.right_eye}
        named |= {"nose": self.nose, "mouth": self.mouth}
        name = min(named, key=named.__getitem__)
        return named[name], name

    @property
    def shape(self) -> lm.Shape:
        return lm.Shape(
            self.mouth_below, self.mouth_along, self.nose_side, self.nose_drop, self.eye_span
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# Reasons that suggest discarding; "profile" is recorded but acceptable under the lab's rules.
# "landmarks": the five points cannot be a face (mirrored, collapsed), so the crop and every
# geometric measure from them is meaningless; "duplicate": a better crop of the same moment;
# "occluded": a feature covered (hand, towel, helmet) or a face its identity does not recognise.
DISCARD_REASONS = (
    "blurry",
    "tilted",
    "small",
    "incomplete",
    "misaligned",
    "landmarks",
    "duplicate",
    "occluded",
)
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
    """The old measure: variance of the Laplacian over the inner face of the 256 px crop."""
    x1, y1, x2, y2 = SHARP_BOX
    return sharp.laplacian_variance(analysis_grey[y1:y2, x1:x2])


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


def face_cut(matrix: np.ndarray, size: int, frame_shape: tuple[int, int]) -> float:
    """Share of the inner face region of the crop whose pixels come from outside the frame."""
    x1, y1, x2, y2 = (v * size for v in sharp.INNER)
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64)
    in_frame = align.apply(align.invert(matrix), corners)
    height, width = frame_shape
    return 1.0 - _clip_area(in_frame, width, height) / max(_polygon_area(in_frame), 1e-9)


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
    crop: np.ndarray | None = None,
) -> Measures:
    """All measures of one face, given its crop matrix (source → `size` FFHQ crop).

    `crop` is the delivered crop, where sharpness is judged; without it, the analysis crop.
    """
    height, width = frame_shape
    x, y = landmarks[:, 0], landmarks[:, 1]
    outside_points = int(((x < 0) | (y < 0) | (x >= width) | (y >= height)).sum())
    upscale = align.scale_of(matrix)
    if crop is None:
        crop, upscale = analysis_grey, upscale * ANALYSIS.size / size
    shape = lm.shape(landmarks)
    seen = vis.features(analysis_grey, ANALYSIS)
    return Measures(
        score=float(score),
        upscale=align.scale_of(matrix),
        roll=roll_degrees(landmarks),
        yaw=yaw_degrees(landmarks),
        sharpness=sharp.crop_sharpness(crop, upscale),
        face_area=face_area(box, matrix, size),
        outside=outside_share(box, frame_shape),
        padding=padding_share(matrix, size, frame_shape),
        residual=residual(landmarks, matrix, align.FFHQ.scaled(size)),
        landmarks_outside=outside_points,
        laplacian=sharpness(analysis_grey),
        mouth_below=shape.mouth_below,
        mouth_along=shape.mouth_along,
        nose_side=shape.nose_side,
        nose_drop=shape.nose_drop,
        eye_span=shape.eye_span,
        face_cut=face_cut(matrix, size, frame_shape),
        shape_residual=lm.shape_residual(landmarks, yaw_degrees(landmarks)),
        left_eye=seen["left eye"],
        right_eye=seen["right eye"],
        nose=seen["nose"],
        mouth=seen["mouth"],
    )


def reasons(m: Measures, t: Thresholds) -> list[str]:
    """Human-readable reasons, one per failed rule, each starting with the rule's key word."""
    out = []
    if m.sharpness < t.blur:
        out.append(f"blurry: sharpness {m.sharpness:.1f} < {t.blur:g}")
    faults = lm.faults(m.shape)
    if faults:
        # Broken points make the eye line, the scale, the fit and the yaw meaningless: one
        # reason instead of "tilted 180°", "small" and "misaligned".
        out.append(f"landmarks: {'; '.join(faults)}")
    elif abs(m.roll) > t.roll:
        out.append(f"tilted: eye line {m.roll:+.0f}° (limit ±{t.roll:g}°)")
    if not faults and m.face_area < t.face_area:
        out.append(f"small: face covers {m.face_area:.0%} of the crop (< {t.face_area:.0%})")
    if m.landmarks_outside:
        out.append(f"incomplete: {m.landmarks_outside} landmark(s) outside the frame")
    elif not faults and m.face_cut > t.cut:  # (the crop of broken points shows nothing)
        out.append(f"incomplete: {m.face_cut:.0%} of the inner face is outside the frame")
    elif m.outside > t.outside:
        out.append(f"incomplete: {m.outside:.0%} of the face is outside the frame")
    elif not faults and m.padding > t.padding:
        out.append(f"incomplete: {m.padding:.0%} of the crop is padding")
    elif m.score < t.score:
        out.append(f"incomplete: detector score {m.score:.2f} < {t.score:g} (occluded?)")
    misaligned = [] if faults else _misaligned(m, t)
    seen, feature = m.hidden
    # Points off the face put the feature boxes off the features too: no occlusion verdict.
    if not faults and not misaligned and seen < t.occluded:
        out.append(f"occluded: the {feature} is hidden (visibility {seen:.2f} < {t.occluded:g})")
    out += misaligned
    if not faults and abs(m.yaw) > t.profile:
        out.append(f"profile: yaw about {m.yaw:+.0f}°")
    return out


def _misaligned(m: Measures, t: Thresholds) -> list[str]:
    """The alignment rules for plausible points: fit, shape at their yaw, and zoom."""
    allowed = lm.residual_allowance(t.residual, m.yaw)
    if m.residual > allowed:
        return [
            f"misaligned: landmarks {m.residual:.2f} eye distances off the template "
            f"(limit {allowed:.2f} at yaw {m.yaw:+.0f}°)"
        ]
    if m.shape_residual > t.shape:
        return [
            f"misaligned: landmarks {m.shape_residual:.2f} eye distances off a face turned "
            f"{m.yaw:+.0f}° (limit {t.shape:g})"
        ]
    if m.face_area > t.zoomed:
        return [f"misaligned: the face fills {m.face_area:.0%} of the crop (> {t.zoomed:.0%})"]
    return []


def reason_keys(texts: list[str]) -> list[str]:
    return [text.split(":", 1)[0] for text in texts]


def passes(texts: list[str]) -> bool:
    """A face passes when no discard rule fired (profile alone is fine)."""
    return not any(key in DISCARD_REASONS for key in reason_keys(texts))
