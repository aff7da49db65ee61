"""End to end: a synthesised film of real faces through `reelface extract`, against its truth."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from reelface import catalogue, synth
from reelface.cli import main
from reelface.pipeline import align, thumbs
from tests.conftest import CROP


def run_cli(ws_root: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["-w", str(ws_root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def extract_json(ws_root: Path, film: Path, *extra: str) -> dict:
    output = run_cli(ws_root, "extract", str(film), "--size", str(CROP), "--json", *extra)
    return json.loads(output)[0]


def all_faces(ws_root: Path) -> list[dict]:
    return json.loads(run_cli(ws_root, "faces", "--json"))


def followed(face_rows: list[dict], truth: dict[int, synth.FrameTruth], shots: list[dict]):
    """(truth frame, row or None) for the face the camera follows, in every frame with faces."""
    by_frame: dict[int, list[dict]] = {}
    for row in face_rows:
        by_frame.setdefault(row["frame"], []).append(row)
    for index in sorted(by_frame):
        frame = truth[index]
        target = frame.faces[shots[frame.shot]["face"]].landmarks
        iod = np.linalg.norm(target[1] - target[0])
        near = [
            row
            for row in by_frame[index]
            if np.linalg.norm(np.array(row["landmarks"])[:2].mean(0) - target[:2].mean(0))
            < 0.3 * iod
        ]
        yield frame, (near[0] if near else None)


@pytest.fixture(scope="module")
def extracted(film: Path, tmp_path_factory: pytest.TempPathFactory, models_dir: Path):
    root = tmp_path_factory.mktemp("ws") / "ws"
    summary = extract_json(root, film)
    film_info, frames = synth.read_truth(film)
    return root, summary, all_faces(root), {f.index: f for f in frames}, film_info["shots"]


def test_faces_are_aligned_on_the_ffhq_template(extracted) -> None:
    """Detected eyes sit on the true eyes, and the crop puts them where the true landmarks would."""
    root, summary, rows, truth, shots = extracted
    checked = 0
    for frame, row in followed(rows, truth, shots):
        if frame.label != "clean":
            continue
        assert row is not None, f"the followed face of frame {frame.index} was not extracted"
        true = frame.faces[shots[frame.shot]["face"]].landmarks
        iod = np.linalg.norm(true[1] - true[0])
        found = np.array(row["landmarks"])[:2]
        # The truth's eye centres are dlib eyelid-contour means; SCRFD's are pupils: up to 8 %.
        assert np.linalg.norm(found - true[:2], axis=1).max() < 0.1 * iod, frame.index
        ideal = align.align_matrix(true, align.FFHQ, CROP)
        ours = align.apply(np.array(row["matrix"]), true[:2])
        error = np.linalg.norm(ours - align.apply(ideal, true[:2]), axis=1).max()
        assert error < 5.0, f"frame {frame.index}: eyes {error:.1f} px off where they belong"
        crop = cv2.imread(str(root / row["crop_path"]))
        assert crop.shape == (CROP, CROP, 3)
        checked += 1
    assert checked >= 10


def test_each_segment_carries_its_reason(extracted) -> None:
    _, _, rows, truth, shots = extracted
    expected = {"blur": "blurry", "tilt": "tilted", "edge": "incomplete"}
    seen: dict[str, int] = {}
    for frame, row in followed(rows, truth, shots):
        if frame.label == "clean":
            assert row is not None, f"clean frame {frame.index}: not extracted"
            keys = [reason.split(":")[0] for reason in row["reasons"]]
            # A static shot sampled again is folded to its best face: the rest are duplicates.
            assert row["passed"] or keys == ["duplicate"], f"clean frame {frame.index}: {row}"
            continue
        assert row is not None, f"{frame.label} frame {frame.index}: face not extracted"
        keys = [reason.split(":")[0] for reason in row["reasons"]]
        assert expected[frame.label] in keys, f"{frame.label} frame {frame.index}: {keys}"
        assert not row["passed"]
        seen[frame.label] = seen.get(frame.label, 0) + 1
    assert set(seen) == set(expected)


def test_every_face_has_a_record_a_crop_and_an_embedding(extracted) -> None:
    root, summary, rows, _, _ = extracted
    assert summary["faces_passed"] + summary["faces_flagged"] == len(rows) > 0
    files = sorted((root / "films" / summary["slug"] / "faces").iterdir())
    assert [f.name for f in files] == sorted(Path(r["crop_path"]).name for r in rows)
    for row in rows:  # every face has its terminal preview
        assert thumbs.load_thumb(root, row["crop_path"]).shape == (thumbs.SIZE, thumbs.SIZE, 3)
        assert thumbs.thumb_path(root, row["crop_path"]).is_file()
    conn = catalogue.open_catalogue(root / "catalogue.sqlite")
    ids, vectors = catalogue.embeddings(conn)
    models = conn.execute("SELECT role, name, sha256 FROM models ORDER BY role").fetchall()
    conn.close()
    assert len(ids) == len(rows)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert [m["role"] for m in models] == ["detector", "embedder"]
    assert all(len(m["sha256"]) == 64 for m in models)
    for row in rows:
        assert row["measures"]["upscale"] <= 1 / 0.7 + 1e-6
        assert row["film"] == summary["slug"] and row["pts"] is not None


def test_a_finished_film_is_skipped_and_listed(extracted, film: Path) -> None:
    root, summary, rows, _, _ = extracted
    again = extract_json(root, film)
    assert again["state"] == "skipped" and again["frames_sampled"] == 0
    assert len(all_faces(root)) == len(rows)
    films = json.loads(run_cli(root, "films", "--json"))
    assert [(f["slug"], f["state"], f["faces"]) for f in films] == [
        (summary["slug"], "done", len(rows))
    ]
    table = run_cli(root, "faces", "--film", summary["slug"])
    assert f"{len(rows)} faces" in table
    # The summary says so in words, not as a speed of 0 frames/s.
    text = run_cli(root, "extract", str(film), "--size", str(CROP))
    assert "already extracted (use --force" in text and "speed:" not in text


def _snapshot(root: Path) -> tuple[list[tuple], dict[str, str]]:
    conn = sqlite3.connect(root / "catalogue.sqlite")
    rows = conn.execute(
        "SELECT frame, slot, pts, box, landmarks, matrix, crop_path, measures, reasons, passed, "
        "embedding FROM faces ORDER BY frame, slot"
    ).fetchall()
    conn.close()
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "films").rglob("*.png"))
    }
    return rows, files


def test_killed_and_resumed_extraction_equals_an_uninterrupted_one(
    extracted, film: Path, tmp_path: Path
) -> None:
    reference = _snapshot(extracted[0])
    root = tmp_path / "killed"
    env = {**os.environ, "REELFACE_WORKSPACE": str(root)}
    command = [sys.executable, "-m", "reelface", "extract", str(film), "--size", str(CROP)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    committed = -1
    while time.time() < deadline and process.poll() is None:
        try:
            conn = sqlite3.connect(root / "catalogue.sqlite", timeout=1)
            found = conn.execute("SELECT last_frame FROM films").fetchone()
            conn.close()
        except sqlite3.Error:
            found = None
        if found and found[0] >= 0:
            committed = found[0]
            break
        time.sleep(0.05)
    assert process.poll() is None, "extraction finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert committed >= 0
    partial = _snapshot(root)
    assert 0 < len(partial[0]) < len(reference[0])
    result = subprocess.run(command + ["--json"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert _snapshot(root) == reference


def test_reimported_crops_are_not_enlarged_and_pass(extracted, tmp_path: Path) -> None:
    """Crops made by another tool (here: ours) come back as faces at 1.0× with their file names."""
    root, _, rows, _, _ = extracted
    folder = tmp_path / "aligned by another tool"
    folder.mkdir()
    clean = [r for r in rows if r["passed"]][:4]
    for row in clean:
        (folder / f"crop {row['id']}.png").write_bytes((root / row["crop_path"]).read_bytes())
    again = tmp_path / "ws"
    summary = extract_json(again, folder)
    faces = all_faces(again)
    assert summary["faces_passed"] == len(clean) == len(faces)
    assert sorted(f["source"] for f in faces) == sorted(f"crop {r['id']}.png" for r in clean)
    for face in faces:
        assert face["measures"]["upscale"] == pytest.approx(1.0, abs=0.08)


def test_unavailable_hardware_decoding_falls_back_with_a_note(tmp_path: Path) -> None:
    """Asked for CUDA decoding on a machine without it: the same faces, and a note why."""
    from reelface.synth import demo

    film = tmp_path / "short.mp4"
    synth.make_film(film, demo.scenario(640, 360, eye=60, frames=10)[:2], size=(640, 360))
    results = {}
    for hwaccel in ("", "cuda"):
        root = tmp_path / f"ws-{hwaccel or 'cpu'}"
        run_cli(root, "init")
        config = root / "reelface.toml"
        config.write_text(config.read_text().replace('hwaccel = ""', f'hwaccel = "{hwaccel}"'))
        results[hwaccel] = extract_json(root, film, "--size", "128")
    if not results["cuda"]["notes"]:
        pytest.skip("this machine decodes with CUDA; the fallback path is not reachable here")
    assert "hardware decoding off" in results["cuda"]["notes"][0]
    assert results["cuda"]["faces_passed"] == results[""]["faces_passed"] > 0
