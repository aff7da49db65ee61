"""The measures behind the cleaning rules, on real faces and exact geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reelface import synth
from reelface.pipeline import align, quality


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    photo = synth.load_photo(synth.package_photos()["skimage_astronaut"])
    return photo, synth.package_landmarks()["skimage_astronaut"][0]


def _rotate(points: np.ndarray, degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = points.mean(0)
    return (points - centre) @ rot.T + centre


def test_roll_is_the_eye_line_angle() -> None:
    face = align.FFHQ.points.astype(np.float64)
    assert abs(quality.roll_degrees(face)) < 0.2
    for degrees in (-45, -10, 31, 80):
        assert quality.roll_degrees(_rotate(face, degrees)) == pytest.approx(degrees, abs=0.3)


def test_yaw_grows_as_the_nose_moves_sideways() -> None:
    face = align.FFHQ.points.astype(np.float64)
    assert abs(quality.yaw_degrees(face)) < 3
    left, right = face.copy(), face.copy()
    left[2, 0] -= 40
    right[2, 0] += 40
    assert quality.yaw_degrees(left) < -25 and quality.yaw_degrees(right) > 25
    assert quality.yaw_degrees(_rotate(right, 30)) == pytest.approx(
        quality.yaw_degrees(right), abs=1
    )


def test_face_area_passes_correct_crops_and_fails_shrunken_faces(astronaut, models_dir) -> None:
    from reelface.models import install
    from reelface.models.scrfd import ScrfdDetector

    photo, _ = astronaut
    [[det]] = ScrfdDetector(install.detector_path(models_dir)).detect([photo], 512, 0.5)
    box, landmarks = det.box.astype(np.float64), det.landmarks.astype(np.float64)
    size = 512
    good = align.align_matrix(landmarks, align.FFHQ, size)
    assert 0.5 < quality.face_area(box, good, size) < 0.8
    # Landmarks that claim a face 30 % larger than it is: the crop shows it shrunken.
    centre = landmarks.mean(0)
    wrong = align.align_matrix((landmarks - centre) * 1.3 + centre, align.FFHQ, size)
    assert quality.face_area(box, wrong, size) < quality.Thresholds().face_area
    # Displaced: the same face pushed half out of the crop.
    shifted = good.copy()
    shifted[0, 2] += size * 0.5
    assert quality.face_area(box, shifted, size) < quality.Thresholds().face_area


def test_outside_share_and_padding() -> None:
    frame = (100, 200)  # height, width
    assert quality.outside_share(np.array([150.0, 10, 250, 60]), frame) == pytest.approx(0.5)
    assert quality.outside_share(np.array([10.0, 10, 50, 50]), frame) == pytest.approx(0.0)
    # A crop that maps half of itself to the left of the frame.
    matrix = np.array([[1.0, 0, 50], [0, 1.0, 0]])
    assert quality.padding_share(matrix, 100, frame) == pytest.approx(0.5)


def test_sharpness_falls_with_blur_and_ignores_the_output_size(astronaut) -> None:
    photo, landmarks = astronaut
    matrix = align.align_matrix(landmarks, quality.ANALYSIS, quality.ANALYSIS.size)
    sharp = cv2.cvtColor(align.warp(photo, matrix, 256), cv2.COLOR_RGB2GRAY)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.5)
    assert quality.sharpness(blurred) < 0.3 * quality.sharpness(sharp)
    # The same face through a 1024 crop shrunk back to 256 measures the same.
    big = align.warp(photo, align.align_matrix(landmarks, align.FFHQ, 1024), 1024)
    again = cv2.cvtColor(
        cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY
    )
    assert quality.sharpness(again) == pytest.approx(quality.sharpness(sharp), rel=0.25)


def test_reasons_name_the_rule_and_profile_alone_passes() -> None:
    base = dict(
        score=0.8,
        upscale=1.0,
        roll=0.0,
        yaw=0.0,
        sharpness=100.0,
        face_area=0.6,
        outside=0.0,
        padding=0.0,
        residual=0.05,
        landmarks_outside=0,
    )
    rules = quality.Thresholds()
    assert quality.reasons(quality.Measures(**base), rules) == []
    texts = quality.reasons(quality.Measures(**{**base, "yaw": 70.0}), rules)
    assert quality.reason_keys(texts) == ["profile"] and quality.passes(texts)
    texts = quality.reasons(quality.Measures(**{**base, "sharpness": 3.0, "roll": 40.0}), rules)
    assert quality.reason_keys(texts) == ["blurry", "tilted"] and not quality.passes(texts)


def test_similarity_recovers_a_known_transform() -> None:
    points = align.ARCFACE.points.astype(np.float64)
    angle, scale, shift = np.radians(20), 2.5, np.array([30.0, -12.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = points @ rot.T + shift
    matrix = align.similarity(points, moved)
    assert np.allclose(matrix[:, :2], rot, atol=1e-9) and np.allclose(matrix[:, 2], shift)
    assert align.scale_of(matrix) == pytest.approx(scale)
    assert np.allclose(align.apply(align.invert(matrix), moved), points)
