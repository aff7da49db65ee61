"""Whether five landmarks can belong to a face, and how far a turned head's points leave the
template by themselves: a 3D mean face rotated by yaw and put through the same similarity fit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from reelface.pipeline import align

# Eye centres, nose tip and mouth corners of insightface's 3D mean face (data/objects/
# meanshape_68.pkl: eye centre = mean of the six eye-contour points, 30, 48, 54), in eye
# distances from the eye midpoint, x right, y down, z towards the camera, pitched by 28.3° so
# that its frontal view fits the FFHQ template best (residual 0.027; tests/test_quality_flags.py
# re-derives it from the file).
MEAN_FACE = np.array(
    [
        [-0.5000, -0.0025, -0.0048],
        [0.5000, 0.0025, 0.0048],
        [0.0008, 0.5425, 0.3144],
        [-0.3644, 0.9763, -0.3875],
        [0.4251, 0.9756, -0.3953],
    ]
)
# How far a correct face's points may sit from where they belong, in units of the eye–mouth
# distance (which, unlike the eye distance, does not shrink as the head turns). The mean face
# turned by 90° moves its nose 0.32 sideways; turned 80° and nodded 40° its mouth drops only 0.42
# below the eye line (the nod's depth turns sideways); mirrored points give −1. The limits allow
# twice the nose's own movement and every turn to ±85° with nods to ±40°.
MOUTH_BELOW = 0.3  # the mouth's drop below the eye line, as a share of the eye–mouth distance
NOSE_SIDE = 0.8  # the nose's sideways offset from the eye–mouth midline
NOSE_DROP = (-0.3, 1.3)  # the nose's drop below the eye line
# Nods tried when judging the points' shape (a head looking down or up), degrees.
PITCHES = tuple(range(-40, 41, 5))
EYE_SPAN = 0.03  # eye distance below this share (a turn past 88°): both eyes on one point


@dataclass(frozen=True)
class Shape:
    """Five landmarks in the eye-line frame, in eye–mouth distances (see `shape`)."""

    mouth_below: float  # ≈ 1 on a face; ≤ 0 when the mouth is above the eyes (mirrored)
    mouth_along: float  # cosine between the mouth-corner and eye lines; < 0 when swapped
    nose_side: float
    nose_drop: float
    eye_span: float


def shape(landmarks: np.ndarray) -> Shape:
    """Where mouth and nose sit in the frame of the eye line (x along it, y down the face)."""
    p = np.asarray(landmarks, np.float64)
    eyes = p[1] - p[0]
    iod = float(np.linalg.norm(eyes))
    eye_mid, mouth_mid = (p[0] + p[1]) / 2, (p[3] + p[4]) / 2
    height = float(np.linalg.norm(mouth_mid - eye_mid))
    if height < 1e-6 or iod < 1e-6:
        return Shape(0.0, 0.0, 0.0, 0.0, 0.0)
    ux = eyes / iod
    uy = np.array([-ux[1], ux[0]])  # the eye line turned +90°: down the face when upright
    mouth = p[4] - p[3]
    mouth_len = float(np.linalg.norm(mouth))
    nose = p[2] - (eye_mid + mouth_mid) / 2
    return Shape(
        mouth_below=float(np.dot(mouth_mid - eye_mid, uy)) / height,
        mouth_along=float(np.dot(mouth, ux)) / mouth_len if mouth_len > 1e-6 else 1.0,
        nose_side=float(np.dot(nose, ux)) / height,
        nose_drop=float(np.dot(p[2] - eye_mid, uy)) / height,
        eye_span=iod / height,
    )


def faults(s: Shape) -> list[str]:
    """What makes these landmarks impossible for a face; empty when they are plausible."""
    out = []
    if s.mouth_below < MOUTH_BELOW:
        out.append("mouth not below the eyes (mirrored?)")
    if s.mouth_along < 0 and s.eye_span > 0.15:
        out.append("mouth corners run against the eye line")
    if s.eye_span < EYE_SPAN:
        out.append("eyes on one point")
    if abs(s.nose_side) > NOSE_SIDE or not NOSE_DROP[0] <= s.nose_drop <= NOSE_DROP[1]:
        out.append("nose outside the face")
    return out


def turned(yaw: float, pitch: float = 0.0) -> np.ndarray:
    """The mean face's five points seen from a camera at `yaw` degrees (orthographic), the
    head nodded by `pitch` degrees first, (5, 2)."""
    a, b = math.radians(yaw), math.radians(pitch)
    turn = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0]])
    nod = np.array(
        [[1.0, 0.0, 0.0], [0.0, math.cos(b), -math.sin(b)], [0.0, math.sin(b), math.cos(b)]]
    )
    return MEAN_FACE @ (turn @ nod).T


def fit_residual(points: np.ndarray) -> float:
    """RMS distance from the FFHQ template after the similarity fit, in template eye distances."""
    template = align.FFHQ.points.astype(np.float64)
    mapped = align.apply(align.similarity(points, template), points)
    error = np.sqrt(((mapped - template) ** 2).sum(1).mean())
    return float(error / np.linalg.norm(template[1] - template[0]))


def shape_residual(points: np.ndarray, yaw: float) -> float:
    """RMS distance of the points from the mean face turned by `yaw` and nodded as they fit best
    (±40°: a face looking down or up is no fault), after the similarity fit onto it, in eye
    distances. Correct detections of the package and sample photos: 0.01–0.075; one or two
    points moved by half an eye distance or more: mostly 0.11–0.26."""
    models = _nodded(round(float(np.clip(yaw, -90.0, 90.0)), 1))
    # align.similarity's closed form for every nod at once: points as complex numbers.
    p = np.asarray(points, np.float64)
    src = (p[:, 0] - p[:, 0].mean()) + 1j * (p[:, 1] - p[:, 1].mean())
    dst = models[..., 0] - models[..., 0].mean(1, keepdims=True)
    dst = dst + 1j * (models[..., 1] - models[..., 1].mean(1, keepdims=True))
    factor = (dst @ src.conj()) / max(float(np.vdot(src, src).real), 1e-300)
    error = np.abs(factor[:, None] * src[None] - dst)
    return float(np.sqrt((error**2).mean(1)).min())


@lru_cache(maxsize=2048)
def _nodded(yaw: float) -> np.ndarray:
    """The mean face at `yaw` for every nod in PITCHES, (len(PITCHES), 5, 2)."""
    return np.stack([turned(yaw, pitch) for pitch in PITCHES])


@lru_cache(maxsize=1)
def _turn_residuals() -> np.ndarray:
    """Residual of the turned mean face at every whole degree of yaw, 0–90."""
    return np.array([fit_residual(turned(y)) for y in range(91)])


def turn_residual(yaw: float) -> float:
    """The residual a correct face turned by `yaw` degrees has by itself (0.03 frontal, 0.37 at
    72°: the lab measured 0.38 on a clean 72° profile)."""
    table = _turn_residuals()
    return float(np.interp(min(abs(yaw), 90.0), np.arange(91), table))


def residual_allowance(limit: float, yaw: float) -> float:
    """The residual limit at `yaw`: landmark error and the turn's own residual add as
    independent errors do (in squares), so the error allowed stays `limit` at any yaw."""
    frontal = turn_residual(0.0)
    return math.sqrt(limit**2 + max(turn_residual(yaw) ** 2 - frontal**2, 0.0))
