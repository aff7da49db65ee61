"""SimSwap training on the CPU with the tiny configuration, on a tiny real-face data set.

The data set: the eight faces of the package photos (insightface's t1 group photo, its Tom
Hanks crop, skimage's astronaut), each aligned on the ArcFace template at 64 px from its known
landmarks, jittered (±6°, ±6 % scale, ±2 px, gain) into a few crops per identity, jpg and png.
The identity network is a tiny randomly initialised IResNet saved as a state dict (the real
ArcFace cannot be downloaded here), so identity numbers are small but exactly reproducible.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from reelface import synth
from reelface.cli.train import train_command
from reelface.pipeline import align
from reelface.swap import checkpoint, data, losses
from reelface.swap.run_files import GENERATOR, LATEST, read_state
from reelface.swap.train_options import TrainOptions
from reelface.swap.trainer import Trainer
from tests.test_arcface import tiny_net

SIZE = 64
CROPS = 3


def make_dataset(root: Path, crops: int = CROPS, size: int = SIZE, seed: int = 3) -> Path:
    """root/<person>/NN.(jpg|png): every package face, aligned and jittered."""
    rng = np.random.default_rng(seed)
    photos, landmarks = synth.package_photos(), synth.package_landmarks()
    template = align.ARCFACE.scaled(size)
    for name, path in sorted(photos.items()):
        image = synth.load_photo(path)
        for face, lm in enumerate(landmarks[name]):
            folder = root / f"{name}_{face}"
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(crops):
                base = align.align_matrix(lm, template, size)
                centre = (size / 2, size / 2)
                jitter = cv2.getRotationMatrix2D(
                    centre, rng.uniform(-6, 6), rng.uniform(0.94, 1.06)
                )
                jitter[:, 2] += rng.uniform(-2, 2, 2)
                crop = align.warp(image, align.compose(jitter, base), size)
                crop = np.clip(crop * rng.uniform(0.9, 1.1), 0, 255).astype(np.uint8)
                suffix = (".jpg", ".png")[k % 2]
                ok, encoded = cv2.imencode(suffix, cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                assert ok
                (folder / f"{k:02d}{suffix}").write_bytes(encoded.tobytes())
    return root


def save_arcface(path: Path) -> Path:
    """A tiny random IResNet (64-d) as a plain state dict."""
    torch.save(tiny_net().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="session")
def arcface_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_arcface(tmp_path_factory.mktemp("arcface") / "arcface_state.pt")


def tiny_options(faces: Path, arcface: Path, out: Path, **extra: object) -> TrainOptions:
    values = dict(
        data=[str(faces)], out=str(out), arcface=str(arcface), steps=6, batch=4, size=SIZE,
        tiny=True, save_every=3, sample_every=3, log_every=1, workers=0, device="cpu",
    )  # fmt: skip
    values.update(extra)
    return TrainOptions(**values)


# ---------------------------------------------------------------------------------------------
# Data


def test_scan_finds_jpg_and_png_identities(faces: Path, tmp_path: Path) -> None:
    identities, notes = data.scan([faces])
    assert len(identities) == 8 and not notes
    assert all(len(i.files) == CROPS for i in identities)
    assert {p.suffix for i in identities for p in i.files} == {".jpg", ".png"}
    # A second root adds its identities; a one-image identity and an empty folder are fine.
    other = tmp_path / "other"
    (other / "solo").mkdir(parents=True)
    (other / "empty").mkdir()
    (other / "solo" / "a.png").write_bytes((faces / "skimage_astronaut_0" / "01.png").read_bytes())
    both, notes = data.scan([faces, other])
    assert len(both) == 9 and len(notes) == 1 and "empty" in notes[0]


def test_data_errors_are_one_line(faces: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.jpg").write_bytes((faces / "skimage_astronaut_0" / "00.jpg").read_bytes())
    with pytest.raises(data.DataError, match="flat.*<identity>"):
        data.scan([flat])
    with pytest.raises(data.DataError, match="no such folder"):
        data.scan([tmp_path / "missing"])
    identities, _ = data.scan([faces])
    with pytest.raises(data.DataError, match="8 identities, but --batch 5 .* needs at least 10"):
        data.check_batch(identities, 5, 2, [faces])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(data.DataError, match="bad.jpg: not a readable image"):
        data.read_crop(bad, SIZE)
    for error in ("flat", "missing"):
        assert "\n" not in error


def test_pair_schedule(faces: Path) -> None:
    identities, _ = data.scan([faces])
    schedule = data.Schedule(len(identities), 4, world=1, seed=0)
    batches = data.PairBatches(identities, SIZE, schedule, augment=True)
    same, cross = batches[0], batches[2]  # counters 0, 1: step 0 (same); 2, 3: step 1 (cross)
    assert same["same"] and not cross["same"]
    assert same["target"].shape == (4, SIZE, SIZE, 3) and same["target"].dtype == torch.uint8
    assert torch.equal(same["perm"], torch.arange(4))
    assert sorted(cross["perm"].tolist()) == [0, 1, 2, 3]
    # Every draw is a function of the counter: the same batch again, bit for bit.
    assert torch.equal(batches[5]["source"], batches[5]["source"])
    # An epoch (two batches of four) visits every identity once.
    rows = np.concatenate([schedule.rows(0), schedule.rows(1)])
    assert sorted(rows.tolist()) == list(range(8))


# ---------------------------------------------------------------------------------------------
# Training


def test_loss_falls_on_a_fixed_batch(faces: Path, arcface_file: Path, tmp_path: Path) -> None:
    options = tiny_options(faces, arcface_file, tmp_path / "run", lr=2e-3)
    trainer = Trainer(options)
    identities, _ = data.scan([faces])
    batches = data.PairBatches(identities, SIZE, data.Schedule(len(identities), 4))
    fixed = batches[0]  # a same-identity batch: reconstruction and identity both apply
    recon, ident = [], []
    for _ in range(40):
        values = trainer.train_step(fixed, fixed)
        recon.append(values["G/reconstruction"])
        ident.append(values["G/identity"])
    assert np.mean(recon[-5:]) < 0.6 * np.mean(recon[:5])
    assert np.mean(ident[-5:]) < np.mean(ident[:5])


def _states_equal(a: dict, b: dict) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_states_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_states_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


@pytest.fixture(scope="session")
def resumed_run(faces: Path, arcface_file: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(uninterrupted 6-step run, 3 steps + resume to 6), both through the CLI."""
    root = tmp_path_factory.mktemp("runs")
    common = ["--data", str(faces), "--arcface", str(arcface_file), "--tiny", "--batch", "4",
              "--save-every", "3", "--sample-every", "3", "--log-every", "1", "--workers", "0",
              "--device", "cpu"]  # fmt: skip
    runner = CliRunner()
    whole = runner.invoke(train_command, [*common, "--out", str(root / "whole"), "--steps", "6"])
    assert whole.exit_code == 0, whole.output
    first = runner.invoke(train_command, [*common, "--out", str(root / "split"), "--steps", "3"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(train_command, [*common, "--out", str(root / "split"), "--steps", "6"])
    assert again.exit_code == 2 and "--resume" in again.output
    # Resuming needs nothing but the run folder and the new length; workers may differ.
    more = ["--out", str(root / "split"), "--resume", "--steps", "6", "--workers", "1"]
    resumed = runner.invoke(train_command, more)
    assert resumed.exit_code == 0, resumed.output
    return root / "whole", root / "split"


def test_resume_is_bit_identical(resumed_run: tuple[Path, Path]) -> None:
    whole, split = resumed_run
    a = read_state(whole / LATEST)
    b = read_state(split / LATEST)
    assert a["step"] == b["step"] == 6
    for key in ("generator", "discriminator", "optim_g", "optim_d", "rng"):
        if key == "generator":
            assert _states_equal(a[key]["state_dict"], b[key]["state_dict"])
        else:
            assert _states_equal(a[key], b[key]), key
    lines = [json.loads(x) for x in (split / "scalars.jsonl").read_text().splitlines()]
    whole_lines = [json.loads(x) for x in (whole / "scalars.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, 7))
    assert [x["G/total"] for x in lines] == [x["G/total"] for x in whole_lines]


def _event_tags(folder: Path) -> set[str]:
    """Scalar tags in TensorBoard event files, read with tensorboardX's protobuf classes."""
    from tensorboardX.proto import event_pb2

    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        raw = path.read_bytes()
        at = 0
        while at < len(raw):
            (length,) = struct.unpack("<Q", raw[at : at + 8])
            event = event_pb2.Event.FromString(raw[at + 12 : at + 12 + length])
            tags |= {v.tag for v in event.summary.value}
            at += 12 + length + 4
    return tags


def test_run_files(resumed_run: tuple[Path, Path]) -> None:
    _, split = resumed_run
    names = sorted(p.name for p in (split / "samples").iterdir())
    assert names == ["step_00000000.png", "step_00000003.png", "step_00000006.png"]
    grid = cv2.imread(str(split / "samples" / "step_00000006.png"))
    assert grid.shape == (7 * SIZE, 7 * SIZE, 3)  # 6 identities + the header row/column
    assert sorted(p.name for p in (split / "checkpoints").iterdir()) == [
        "step_00000003.pt", "step_00000006.pt"
    ]  # fmt: skip
    assert not list(split.rglob("*.part"))
    assert {"G/identity", "G/reconstruction", "D/total", "speed/images_per_s"} <= _event_tags(
        split / "tb"
    )
    # generator.pt and latest.pt both load as generator checkpoints (swap, evaluation).
    for name in (GENERATOR, LATEST):
        loaded = checkpoint.load(split / name, device="cpu")
        assert loaded.info["step"] == 6 and loaded.config.image_size == SIZE
        assert loaded.identity["dim"] == 64


def test_train_errors(faces: Path, arcface_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "x.png").write_bytes((faces / "skimage_astronaut_0" / "01.png").read_bytes())
    base = ["--arcface", str(arcface_file), "--tiny", "--device", "cpu", "--workers", "0"]
    cases = [
        ([*base, "--data", str(flat), "--out", str(tmp_path / "a")], "flat"),
        ([*base, "--data", str(faces), "--batch", "12", "--out", str(tmp_path / "b")],
         "needs at least 12"),
        (["--data", str(faces), "--out", str(tmp_path / "c")], "--arcface"),
        (["--out", str(tmp_path / "d"), "--resume"], "no latest.pt"),
    ]  # fmt: skip
    for args, expect in cases:
        result = runner.invoke(train_command, args)
        assert result.exit_code == 2, result.output
        assert expect in result.output and len(result.output.strip().splitlines()) == 1


def test_loss_helpers() -> None:
    real = [[torch.ones(1, 2, 3, 3), torch.full((1, 1, 2, 2), 2.0)]]
    fake = [[torch.zeros(1, 2, 3, 3), torch.full((1, 1, 2, 2), -2.0)]]
    loss_real, loss_fake = losses.d_hinge(real, fake)
    assert float(loss_real) == 0.0 and float(loss_fake) == 0.0  # both beyond the margin
    assert float(losses.g_hinge(fake)) == 2.0
    assert float(losses.feature_matching(fake, real)) == pytest.approx(1.0 * 4 / 2)
    z = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    assert float(losses.identity(z, z)) == pytest.approx(0.0, abs=1e-6)


class _Taps(torch.nn.Module):
    """A stand-in feature network: four strided convs, their outputs as the taps."""

    def __init__(self) -> None:
        super().__init__()
        widths = (3, 6, 8, 12, 16)
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(a, b, 3, 2, 1) for a, b in zip(widths, widths[1:], strict=False)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for conv in self.convs:
            x = torch.relu(conv(x))
            taps.append(x)
        return taps


def test_projected_discriminator_from_a_local_backbone(
    faces: Path, arcface_file: Path, tmp_path: Path
) -> None:
    backbone = tmp_path / "backbone.pt2"
    batch_dim = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        _Taps().eval(), (torch.zeros(2, 3, SIZE, SIZE),), dynamic_shapes=({0: batch_dim},)
    )
    torch.export.save(program, str(backbone))
    options = tiny_options(
        faces, arcface_file, tmp_path / "run", discriminator="projected", backbone=str(backbone)
    )
    trainer = Trainer(options)
    frozen = [p for p in trainer.D.backbone.parameters()]
    before = [p.clone() for p in frozen]
    identities, _ = data.scan([faces])
    batch = data.PairBatches(identities, SIZE, data.Schedule(len(identities), 4))[0]
    values = trainer.train_step(batch, batch)
    assert np.isfinite(list(values.values())).all() and values["G/feature"] > 0
    assert all(torch.equal(a, b) for a, b in zip(before, frozen, strict=True))
    with pytest.raises(Exception, match="no such backbone"):
        Trainer(
            tiny_options(
                faces,
                arcface_file,
                tmp_path / "r2",
                discriminator="projected",
                backbone=str(tmp_path / "none.ts"),
            )
        )


def test_a_training_job_reports_progress(faces: Path, arcface_file: Path, tmp_path: Path) -> None:
    """Queued training runs the same trainer and tells the daemon (and the TUI) how far it is."""
    from reelface import workspace
    from reelface.jobs import tasks

    ws = workspace.init(tmp_path / "ws")
    shares: list[float] = []
    params = {"data": [str(faces)], "out": str(tmp_path / "run"), "arcface": str(arcface_file),
              "tiny": True, "size": SIZE, "batch": 2, "steps": 4, "log_every": 1,
              "workers": 0, "device": "cpu"}  # fmt: skip
    done = tasks.run("train", ws, params, report=shares.append)
    assert Path(done["checkpoint"]).is_file()
    assert shares and shares[-1] == 1.0 and shares == sorted(shares)
