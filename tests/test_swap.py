"""`reelface swap` with a trained tiny checkpoint, the feathered paste-back, and a 2-process
DDP run on the CPU (gloo), all on package photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from reelface import synth
from reelface.cli.train import swap_command
from reelface.evaluation import evaluate
from reelface.pipeline import align
from reelface.swap import checkpoint, paste, train
from reelface.swap.run_files import GENERATOR, LATEST, read_state
from tests.test_train import SIZE, make_dataset, save_arcface, tiny_options


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(data root, arcface file, run folder) of a 2-step tiny run."""
    root = tmp_path_factory.mktemp("swaprun")
    faces = make_dataset(root / "faces", crops=2)
    arcface = save_arcface(root / "arcface.pt")
    options = tiny_options(faces, arcface, root / "run", steps=2, save_every=2)
    train.run(options, progress=lambda *a: None)
    return faces, arcface, root / "run"


def test_swap_command_writes_the_pasted_photo(
    trained: tuple[Path, Path, Path], models_dir: Path, tmp_path: Path
) -> None:
    _, _, run = trained
    photos = synth.package_photos()
    out, crop = tmp_path / "swapped.png", tmp_path / "crop.png"
    args = ["--model", str(run / GENERATOR), "--source", str(photos["skimage_astronaut"]),
            "--target", str(photos["insightface_t1"]), "--out", str(out), "--crop-out", str(crop),
            "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(swap_command, args)
    assert result.exit_code == 0, result.output
    assert "6 faces, the largest used" in result.output
    target = synth.load_photo(photos["insightface_t1"])
    swapped = synth.load_photo(out)
    assert swapped.shape == target.shape
    assert cv2.imread(str(crop)).shape == (SIZE, SIZE, 3)
    changed = np.any(swapped != target, axis=2)
    ys, xs = np.nonzero(changed)
    # Only one face's neighbourhood changed: a small part of the group photo.
    assert 0 < changed.mean() < 0.05 and (xs.max() - xs.min()) < target.shape[1] / 4


def test_swap_errors(trained: tuple[Path, Path, Path], models_dir: Path, tmp_path: Path) -> None:
    _, _, run = trained
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    photo = str(synth.package_photos()["skimage_astronaut"])
    model = str(run / GENERATOR)
    cases = [
        (["--model", str(tmp_path / "none.pt"), "--source", photo, "--target", photo],
         "no such generator checkpoint"),
        (["--model", model, "--source", str(blank), "--target", photo], "blank.png: no face"),
    ]  # fmt: skip
    for args, expect in cases:
        result = CliRunner().invoke(swap_command, [*args, "--out", str(tmp_path / "o.png")])
        assert result.exit_code == 2 and expect in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_checkpoint_drives_the_evaluation_swapper(trained: tuple[Path, Path, Path]) -> None:
    faces, _, run = trained
    loaded = checkpoint.load(run / LATEST, device="cpu")
    crops = np.stack([synth.load_photo(p) for p in sorted(faces.glob("*/*"))[:3]])
    ids = torch.nn.functional.normalize(torch.randn(3, loaded.config.id_dim), dim=1).numpy()
    out = evaluate.GeneratorSwapper("model", loaded).swap(crops, crops, ids)
    assert out.shape == crops.shape and out.dtype == np.uint8


def test_feather_scales_with_the_face() -> None:
    lm = synth.package_landmarks()["skimage_astronaut"][0]
    bands = []
    for zoom in (1.0, 4.0):
        matrix = align.align_matrix(lm * zoom, align.ARCFACE.scaled(64), 64)
        shape = (int(512 * zoom), int(512 * zoom))
        alpha, (x0, y0, x1, y1) = paste.paste_mask(matrix, 64, shape, paste.Feather())
        side = paste.face_side(matrix, 64)
        # The soft band (0.05 < alpha < 0.95) is a fixed fraction of the face, at any size.
        bands.append(((alpha > 0.05) & (alpha < 0.95)).sum() / side**2)
        assert alpha.max() > 0.99 and alpha[0, 0] < 0.01
    assert 0.2 < bands[0] < 0.5 and bands[1] == pytest.approx(bands[0], rel=0.1)


def test_paste_of_the_unchanged_crop_keeps_the_photo() -> None:
    photo = synth.load_photo(synth.package_photos()["skimage_astronaut"])
    lm = synth.package_landmarks()["skimage_astronaut"][0]
    matrix = align.align_matrix(lm, align.ARCFACE.scaled(128), 128)
    crop = align.warp(photo, matrix, 128)
    back = paste.paste_back(photo, crop, matrix)
    diff = np.abs(back.astype(int) - photo.astype(int))
    assert diff.mean() < 1.0 and diff.max() < 80  # only resampling error inside the face
    black = paste.paste_back(photo, np.zeros_like(crop), matrix)
    _, (x0, y0, x1, y1) = paste.paste_mask(matrix, 128, photo.shape[:2], paste.Feather())
    outside = np.ones(photo.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(black[outside], photo[outside])  # nothing outside the face's region
    assert black[y0:y1, x0:x1].mean() < photo[y0:y1, x0:x1].mean() - 20


def test_two_process_ddp_on_cpu(trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """`--gpus 2 --device cpu`: torchrun starts two gloo processes; rank 0 writes the run."""
    faces, arcface, _ = trained
    options = tiny_options(faces, arcface, tmp_path / "ddp", steps=2, batch=2, gpus=2)
    assert train.launch(options, resume=False) == 0
    state = read_state(tmp_path / "ddp" / LATEST)
    assert state["step"] == 2 and state["options"]["gpus"] == 2
    assert (tmp_path / "ddp" / "samples" / "step_00000002.png").is_file()
