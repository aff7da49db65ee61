"""Tests for reelface.synth: films from package photos with exact landmark truth."""

from __future__ import annotations

import math
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from reelface import synth
from reelface.synth import FrameTruth, Pose, Shot, make_film, read_truth, render_frame
from reelface.synth import film as synth_film

SIZE = (384, 216)
FRAMES = 10


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    """skimage's astronaut photo and its five landmarks (one face)."""
    photos = synth.package_photos()
    if "skimage_astronaut" not in photos:
        pytest.skip("scikit-image's astronaut.png is not installed")
    return synth.load_photo(photos["skimage_astronaut"]), synth.package_landmarks()[
        "skimage_astronaut"
    ]


def _shots(photo: np.ndarray, lm: np.ndarray) -> list[Shot]:
    """Pan, zoom, rotate, and the pan again defocused."""
    pan = Shot(photo, lm, 0, FRAMES, Pose((110, 100), 50), Pose((270, 120), 50), label="pan")
    zoom = Shot(photo, lm, 0, FRAMES, Pose((192, 90), 20), Pose((192, 110), 80), label="zoom")
    tilt = Shot(
        photo, lm, 0, FRAMES, Pose((192, 100), 60, -25.0), Pose((192, 100), 60, 30.0), label="tilt"
    )
    blurred = Shot(photo, lm, 0, FRAMES, pan.start, pan.end, blur=4.0, label="blur")
    return [pan, zoom, tilt, blurred]


@pytest.fixture(scope="module")
def film(
    tmp_path_factory: pytest.TempPathFactory, astronaut: tuple[np.ndarray, np.ndarray]
) -> tuple[Path, list[Shot], list[FrameTruth], list[np.ndarray]]:
    """A four-shot film, its truth and its decoded RGB frames."""
    path = tmp_path_factory.mktemp("film") / "film.mp4"
    shots = _shots(*astronaut)
    truth = make_film(path, shots, size=SIZE, fps=25, gop=12)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return path, shots, truth, frames


def _eyes(landmarks: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Eye midpoint, eye distance and roll (degrees, counter-clockwise) of five landmarks."""
    left, right = landmarks[0], landmarks[1]
    dx, dy = right - left
    return (left + right) / 2, float(math.hypot(dx, dy)), -math.degrees(math.atan2(dy, dx))


def test_package_photos_exist_and_match_landmarks() -> None:
    photos = synth.package_photos()
    landmarks = synth.package_landmarks()
    assert photos, "no package photo found"
    assert set(landmarks) == set(photos)
    for name, path in photos.items():
        assert path.is_file()
        h, w = synth.load_photo(path).shape[:2]
        lm = landmarks[name]
        assert lm.ndim == 3 and lm.shape[1:] == (5, 2)
        assert np.all((lm >= 0) & (lm < [w, h]))


def test_film_decodes_with_matching_count_size_and_truth(film) -> None:
    path, shots, truth, frames = film
    assert len(frames) == len(truth) == sum(s.frames for s in shots)
    assert all(f.shape == (SIZE[1], SIZE[0], 3) for f in frames)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 25
        keys = [i for i, p in enumerate(container.demux(stream)) if p.size and p.is_keyframe]
    # The GOP caps the distance between keyframes (x264 may add scene-cut ones).
    assert keys[0] == 0 and max(np.diff(keys + [len(frames)])) <= 12

    film_info, loaded = read_truth(path)
    assert film_info["size"] == list(SIZE) and film_info["fps"] == 25
    assert film_info["shot_labels"] == [s.label for s in shots]
    assert film_info["frame_count"] == len(truth)
    assert [(t.index, t.shot, t.label) for t in loaded] == [
        (t.index, t.shot, t.label) for t in truth
    ]
    for a, b in zip(loaded, truth, strict=True):
        assert [f.face for f in a.faces] == [f.face for f in b.faces]
        for fa, fb in zip(a.faces, b.faces, strict=True):
            np.testing.assert_allclose(fa.landmarks, fb.landmarks, atol=1e-9)
    assert not [p for p in path.parent.iterdir() if ".tmp" in p.name]


def test_truth_puts_followed_face_at_pose_ends(film) -> None:
    _, shots, truth, _ = film
    first = 0
    for shot in shots:
        for index, pose in ((first, shot.start), (first + shot.frames - 1, shot.end)):
            mid, dist, roll = _eyes(truth[index].faces[shot.face].landmarks)
            np.testing.assert_allclose(mid, pose.centre, atol=0.5)
            assert dist == pytest.approx(pose.eye_distance, abs=0.5)
            assert roll == pytest.approx(pose.roll, abs=0.1)
        first += shot.frames


def test_truth_matches_pixels_of_decoded_frames(film) -> None:
    """An independent detector (dlib, 68 points) finds the eyes where the truth says."""
    dlib = pytest.importorskip("dlib")
    models = pytest.importorskip("face_recognition_models")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models.pose_predictor_model_location())
    _, shots, truth, frames = film
    checked = 0
    # dlib's upright detector copes with roll up to ~25 degrees, so skip the last tilt frame.
    for index in (0, FRAMES - 1, FRAMES, 2 * FRAMES - 1, 2 * FRAMES, 3 * FRAMES - 2):
        rects = detector(frames[index], 1)
        assert len(rects) == 1, f"frame {index}: {len(rects)} faces"
        pts = np.array([[p.x, p.y] for p in predictor(frames[index], rects[0]).parts()], float)
        eyes = np.array([pts[36:42].mean(0), pts[42:48].mean(0)])
        want = truth[index].faces[0].landmarks[:2]
        tolerance = 0.06 * _eyes(want)[1] + 1.0  # dlib's own jitter is ~1 px at this size
        assert np.abs(eyes - want).max() < tolerance, f"frame {index}"
        checked += 1
    assert checked == 6


@pytest.mark.parametrize("eye_distance", [12.0, 30.0, 150.0])
def test_rendered_pixels_follow_the_matrix(eye_distance: float) -> None:
    """Bright dots drawn at the landmarks land where the truth maps them (also when shrinking)."""
    photo = np.full((600, 800, 3), 40, np.uint8)
    lm = np.array(
        [[[300.0, 250.0], [420.0, 262.0], [360.0, 330.0], [310.0, 390.0], [410.0, 400.0]]]
    )
    for x, y in lm[0]:
        cv2.circle(photo, (round(x), round(y)), 6, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    shot = Shot(photo, lm, 0, 2, Pose((250.3, 150.7), eye_distance, 17.0), Pose((0, 0), 1.0))
    frame, matrix = render_frame(shot, 0.0, (500, 400))
    mapped = lm[0] @ matrix[:, :2].T + matrix[:, 2]
    grey = frame[:, :, 0].astype(np.float64) - 40
    radius = max(3, round(8 * eye_distance / 120))
    for x, y in mapped:
        x0, y0 = round(x), round(y)
        patch = np.clip(grey[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1], 0, None)
        ys, xs = np.mgrid[-radius : radius + 1, -radius : radius + 1]
        centroid = np.array([(xs * patch).sum(), (ys * patch).sum()]) / patch.sum()
        np.testing.assert_allclose(centroid + [x0, y0], [x, y], atol=0.15)
    if eye_distance < 100:  # the photo no longer covers the corner: mid-grey, not black
        assert tuple(frame[0, 0]) == synth.FILL_RGB


def test_blurred_shot_is_less_sharp(film) -> None:
    _, shots, truth, frames = film
    pan, blurred = 0, 3 * FRAMES  # shot 3 repeats shot 0 with blur=4

    def sharpness(index: int) -> float:
        lm = truth[index].faces[0].landmarks
        x0, y0 = np.floor(lm.min(0) - 10).astype(int)
        x1, y1 = np.ceil(lm.max(0) + 10).astype(int)
        grey = cv2.cvtColor(frames[index][y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        return float(cv2.Laplacian(grey, cv2.CV_64F).var())

    for i in range(0, FRAMES, 3):
        np.testing.assert_allclose(
            truth[pan + i].faces[0].landmarks, truth[blurred + i].faces[0].landmarks
        )
        assert sharpness(blurred + i) < 0.3 * sharpness(pan + i)


def test_invalid_shot_leaves_no_file(tmp_path: Path, astronaut) -> None:
    photo, lm = astronaut
    path = tmp_path / "bad.mp4"
    bad = Shot(photo, lm, face=3, frames=5, start=Pose((100, 100), 40), end=Pose((100, 100), 40))
    with pytest.raises(ValueError, match="face 3"):
        make_film(path, [bad], size=SIZE)
    with pytest.raises(ValueError, match="even"):
        make_film(path, _shots(photo, lm)[:1], size=(385, 216))
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_encode_keeps_previous_file(
    tmp_path: Path, astronaut, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo, lm = astronaut
    path = tmp_path / "film.mp4"
    path.write_bytes(b"previous film")
    synth.truth_path(path).write_text("[]")
    calls = 0

    def failing(shot: Shot, t: float, size: tuple[int, int]):
        nonlocal calls
        calls += 1
        if calls > 2 * FRAMES:
            raise RuntimeError("renderer broke")
        return render_frame(shot, t, size)

    monkeypatch.setattr(synth_film, "render_frame", failing)  # make_film looks it up there
    with pytest.raises(RuntimeError, match="renderer broke"):
        make_film(path, _shots(photo, lm), size=SIZE)
    assert calls == 2 * FRAMES + 1  # encoding was under way when it failed
    assert path.read_bytes() == b"previous film"
    assert synth.truth_path(path).read_text() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.mp4", "film.truth.json"]
