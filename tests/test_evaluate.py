"""`reelface eval` end to end on a synthetic test set in the lab's layout.

The test set: 40 photos, source_01..20 / target_01..20, cut from real photos shipped in
packages (insightface's t1.jpg, skimage's astronaut, the scrfd samples gauss, newton and the
1927 Solvay conference: 38 people). Photo k shows person k mod 38, so every pair has two
different people; each photo is a different window around the face (3.5–4.5 eye distances,
shifted, rotated ±12°, 256–400 px), some mirrored, with gamma and gain changes, saved as jpg,
png or webp. target_20 is the whole t1 photo (six faces: the largest is used). The identity
network is a small randomly initialised IResNet saved like the lab's pickled file (the real
ArcFace cannot be downloaded), so distances are small but exactly reproducible.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from reelface import config, synth
from reelface.cli.evaluate import eval_command
from reelface.evaluation import evaluate
from reelface.models import registry
from reelface.pipeline import decode
from reelface.swap import checkpoint, identity
from reelface.swap.generator import Generator, GeneratorConfig
from tests.test_arcface import TINY, save_lab_style, tiny_net

SUFFIXES = (".jpg", ".png", ".webp")


def _people(models_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(photo, five landmarks) of every person in the package photos, detected once."""
    detector, _ = registry.load(config.Config())
    photos = [synth.load_photo(p) for p in synth.package_photos().values()]
    photos += [decode.read_image(p) for p in sorted((models_dir / "samples").glob("*"))]
    people = []
    for image in photos:
        if max(image.shape[:2]) < 200:
            continue  # the 112 px Tom Hanks crop is too small to re-frame
        for det in detector.detect([image], 640, 0.5)[0]:
            people.append((image, det.landmarks.astype(np.float64)))
    return people


def _window(image: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A re-framed, lit and maybe mirrored photo of the face with landmarks `lm`."""
    iod = float(np.linalg.norm(lm[1] - lm[0]))
    side = int(rng.choice([256, 320, 400]))
    scale = side / (iod * rng.uniform(3.5, 4.5))
    centre = lm[:2].mean(0) + rng.uniform(-0.3, 0.3, 2) * iod + [0, 0.4 * iod]
    matrix = cv2.getRotationMatrix2D(tuple(centre), rng.uniform(-12, 12), scale)
    matrix[:, 2] += side / 2 - centre
    out = cv2.warpAffine(
        image, matrix, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
    )
    if rng.random() < 0.3:
        out = out[:, ::-1]
    light = 255 * (out / 255.0) ** rng.uniform(0.7, 1.4) * rng.uniform(0.8, 1.15)
    return np.clip(light, 0, 255).astype(np.uint8)


def _write(path: Path, rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(data.tobytes())


@pytest.fixture(scope="session")
def testset(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("testset")
    people = _people(models_dir)
    assert len(people) >= 38
    rng = np.random.default_rng(7)
    for k in range(40):
        role, number = ("source", "target")[k % 2], k // 2 + 1
        image, lm = people[k % len(people)]
        photo = _window(image, lm, rng)
        if (role, number) == ("target", 20):
            photo = synth.load_photo(synth.package_photos()["insightface_t1"])
        _write(folder / f"{role}_{number:02d}{SUFFIXES[k % 3]}", photo)
    return folder


@pytest.fixture(scope="session")
def lab_arcface(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("arcface")
    path = folder / "arcface_checkpoint.tar"
    save_lab_style(tiny_net(), path, folder / "marker")
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("run") / "generator.pt"
    checkpoint.save(path, Generator(GeneratorConfig.tiny(id_dim=TINY.embedding)), info={"step": 0})
    return path


@pytest.fixture(scope="session")
def eval_run(testset: Path, lab_arcface: Path, tiny_checkpoint: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(
        eval_command,
        [
            "--model",
            str(tiny_checkpoint),
            "--testset",
            str(testset),
            "--arcface",
            str(lab_arcface),
            "--out",
            str(out),
            "--baseline",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    print(result.output)
    return out


def _direct(net: torch.nn.Module, a: Path, b: Path) -> float:
    """The protocol written out independently, from the saved crops."""
    vectors = []
    for path in (a, b):
        x = torch.from_numpy(decode.read_image(path)).permute(2, 0, 1)[None].float() / 255
        x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
            [0.229, 0.224, 0.225]
        ).view(1, 3, 1, 1)
        x = torch.nn.functional.interpolate(x, size=(112, 112), mode="bicubic")
        with torch.no_grad():
            vectors.append(torch.nn.functional.normalize(net(x), dim=1)[0])
    return float(1 - torch.dot(vectors[0], vectors[1]))


def test_report_files_and_layout(eval_run: Path) -> None:
    data = json.loads((eval_run / "report.json").read_text())
    assert data["results"] == {"model": 40, "no swap": 40}
    assert [p["pair"] for p in data["pairs"]] == [f"{i:02d}" for i in range(1, 21)]
    assert all(p["used"] for p in data["pairs"])
    assert any("6 faces, largest used" in n for n in data["pairs"][19]["notes"])
    info = data["info"]
    assert info["model"]["config"]["image_size"] == 64 and info["arcface"]["kind"] == "iresnet"
    rows = (eval_run / "report.csv").read_text().splitlines()
    assert rows[0] == "pair,source,target,method,direction,distance" and len(rows) == 81
    grid = decode.read_image(eval_run / "grid.png")
    assert grid.shape[0] == 20 * 160 and grid.shape[1] == 4 * 160


def test_distances_match_a_direct_computation(eval_run: Path) -> None:
    data = json.loads((eval_run / "report.json").read_text())
    net = tiny_net()
    for method, folder in (("model", "model"), ("no swap", "no_swap")):
        crops = eval_run / "crops" / folder
        values = []
        for pair in data["pairs"]:
            n, got = pair["pair"], pair["distances"][method]
            forward = _direct(net, crops / f"{n}_source_on_target.png", crops / f"{n}_source.png")
            backward = _direct(net, crops / f"{n}_target_on_source.png", crops / f"{n}_target.png")
            assert got["source_to_target"] == pytest.approx(forward, abs=1e-5)
            assert got["target_to_source"] == pytest.approx(backward, abs=1e-5)
            values += [forward, backward]
        assert data["mean"][method] == pytest.approx(np.mean(values), abs=1e-5)
    # "No swap" is the target itself, so both directions compare the same two crops.
    for pair in data["pairs"]:
        d = pair["distances"]["no swap"]
        assert d["source_to_target"] == pytest.approx(d["target_to_source"], abs=1e-5)


def test_no_swap_scores_worse_than_perfect_swap(testset: Path, lab_arcface: Path) -> None:
    judge = identity.load_identity(lab_arcface, device="cpu")
    detector, _ = registry.load(config.Config())
    size, how = 64, "arcface"
    report = evaluate.evaluate(
        testset, [evaluate.NoSwap(size, how), evaluate.CopySource(size, how)], judge, detector
    )
    assert report.mean("source copy") == pytest.approx(0.0, abs=1e-6)
    assert report.mean("no swap") > 1e-4
    no_swap = [r.distances for r in report.results["no swap"].values()]
    assert all(d["source_to_target"] > 1e-6 for d in no_swap)


def test_malformed_testset_is_reported(
    testset: Path, lab_arcface: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(testset, folder)
    next(folder.glob("target_03.*")).unlink()  # missing partner
    for old in folder.glob("source_05.*"):
        old.unlink()
    _write(folder / "source_05.png", np.full((300, 300, 3), 128, np.uint8))  # no face
    for old in folder.glob("target_07.*"):
        old.unlink()
    (folder / "target_07.jpg").write_bytes(b"not an image")  # unreadable
    (folder / "notes.txt").write_text("hello")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        eval_command,
        [
            "--model",
            str(tiny_checkpoint),
            "--testset",
            str(folder),
            "--arcface",
            str(lab_arcface),
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "report.json").read_text())
    problems = "\n".join(data["problems"])
    assert "target_03 missing" in problems
    assert "source_05.png: no face found; pair 05 skipped" in problems
    assert "target_07.jpg: not a readable image; pair 07 skipped" in problems
    assert "ignored (not named source_NN/target_NN): notes.txt" in problems
    assert data["results"]["model"] == 2 * 17
    assert {p["pair"] for p in data["pairs"] if not p["used"]} == {"03", "05", "07"}


@pytest.mark.parametrize("case", ["empty", "not-a-folder", "no-arcface", "no-model"])
def test_errors_are_one_line(
    case: str, lab_arcface: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    model, arc = tiny_checkpoint, lab_arcface
    if case == "not-a-folder":
        folder = tmp_path / "missing"
    elif case == "no-arcface":
        arc = tmp_path / "arcface_checkpoint.tar"
    elif case == "no-model":
        model = tmp_path / "latest_net_G.pth"
    result = CliRunner().invoke(
        eval_command,
        [
            "--model",
            str(model),
            "--testset",
            str(folder),
            "--arcface",
            str(arc),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2
    # The lab-style ArcFace file holds a trap: the loader's one-line warning about it may precede.
    lines = [line for line in result.output.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("warning:")]
    assert len(lines) == 1 and "error" in lines[0], result.output
    named = {"empty": folder, "not-a-folder": folder, "no-arcface": arc, "no-model": model}[case]
    assert str(named.name) in lines[0]
