"""Identities end to end on a synthesised film of real people: cluster, decide, export."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from reelface import catalogue, synth
from reelface.cli import main
from reelface.identity import cluster, decisions, scores
from tests.conftest import CROP


def cli(root: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["-w", str(root), *args])
    assert result.exit_code == code, result.output
    return result.output


def person_of(rows: list[dict], film: Path) -> list[str]:
    """True person of each face: the photo's face nearest to the detected eyes."""
    info, frames = synth.read_truth(film)
    truth = {f.index: f for f in frames}
    astronaut = {i for i, s in enumerate(info["shots"]) if s["photo_size"][0] == 512}
    out = []
    for row in rows:
        frame = truth[row["frame"]]
        eyes = np.array(row["landmarks"])[:2].mean(0)
        face = min(frame.faces, key=lambda f: np.linalg.norm(f.landmarks[:2].mean(0) - eyes))
        out.append(("astronaut" if frame.shot in astronaut else "t1") + str(face.face))
    return out


@pytest.fixture(scope="module")
def clustered(film: Path, tmp_path_factory: pytest.TempPathFactory, models_dir: Path):
    root = tmp_path_factory.mktemp("ids") / "ws"
    cli(root, "extract", str(film), "--size", str(CROP), "--json")
    cli(root, "cluster", "--all")
    return root


def faces_json(root: Path) -> list[dict]:
    return json.loads(cli(root, "faces", "--json"))


def test_each_person_is_one_identity_without_k(clustered: Path, film: Path) -> None:
    rows = faces_json(clustered)
    people = person_of(rows, film)
    assert len(set(people)) >= 3
    by_person: dict[str, set] = {}
    for row, person in zip(rows, people, strict=True):
        by_person.setdefault(person, set()).add(row["identity"])
    # Each person is exactly one identity and no identity holds two people.
    assert all(len(ids) == 1 and None not in ids for ids in by_person.values()), by_person
    assert len({next(iter(v)) for v in by_person.values()}) == len(by_person)


def test_decisions_undo_redo_and_recluster(clustered: Path) -> None:
    rows = faces_json(clustered)
    first, second = rows[0]["id"], rows[1]["id"]
    conn = catalogue.open_catalogue(clustered / "catalogue.sqlite")
    try:
        decisions.discard(conn, [first])
        other = next(r["identity"] for r in rows if r["identity"] != rows[1]["identity"])
        decisions.reassign(conn, [second], other)
        assert decisions.view(conn)[second].identity == other
        assert decisions.view(conn)[first].verdict == "discard"
        assert decisions.undo(conn).kind == "reassign"
        assert decisions.view(conn)[second].identity == rows[1]["identity"]
        assert decisions.redo(conn).kind == "reassign"
        assert decisions.view(conn)[second].identity == other
        new = decisions.split(conn, [second])
        decisions.merge(conn, new, rows[1]["identity"])
        assert decisions.view(conn)[second].identity == rows[1]["identity"]
        decisions.undo(conn)
        decisions.undo(conn)
        decisions.redo(conn)
        decisions.redo(conn)
        with pytest.raises(decisions.DecisionError):
            decisions.redo(conn)
        decisions.undo(conn)  # back to: first discarded, second reassigned
        decisions.undo(conn)
    finally:
        conn.close()
    cli(clustered, "cluster", "--all")  # re-clustering keeps every decision
    again = {r["id"]: r for r in faces_json(clustered)}
    assert again[first]["decision"] == "discard"
    assert again[second]["identity"] == other
    assert again[rows[2]["id"]]["identity"] == rows[2]["identity"]  # identity ids are stable


def test_kmeans_mode_and_cli_errors(clustered: Path) -> None:
    out = cli(clustered, "cluster", "--all", "--k", "2", "--json")
    assert json.loads(out)[0]["method"] == "kmeans-2"
    cli(clustered, "cluster", "--all")
    assert "no identity 99999" in cli(clustered, "decide", "reassign", "99999", "1", code=2)


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_export_is_complete_reproducible_and_loads(clustered: Path, tmp_path: Path) -> None:
    before = tree(clustered / "films")
    a, b = tmp_path / "a", tmp_path / "b"
    cli(clustered, "export", str(a), "--zip", "group07_final")
    cli(clustered, "export", str(b), "--zip", "group07_final")
    assert tree(a) == tree(b)  # byte-identical, zip included
    manifest = json.loads((a / "manifest.json").read_text())
    for rel, digest in manifest["checksums"].items():
        assert hashlib.sha256((a / rel).read_bytes()).hexdigest() == digest
    face = manifest["faces"][0]
    assert face["film"] and face["landmarks"] and face["embedder"] and "box" in face
    assert {m["role"] for m in manifest["models"]} == {"detector", "embedder"}
    big = cv2.imread(str(a / face["files"]["ffhq"]))
    small = cv2.imread(str(a / face["files"]["arcface224"]))
    assert big.shape == (CROP, CROP, 3) and small.shape == (224, 224, 3)
    with zipfile.ZipFile(a / "group07_final.zip") as archive:
        assert "manifest.json" in archive.namelist()
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in archive.infolist())
    assert (a / "manifest.csv").read_text().startswith("file,sha256")
    # A training root beside a (tiny) VGGFace2-224 root, read by a plain folder loader.
    vgg = tmp_path / "vgg"
    (vgg / "n000001").mkdir(parents=True)
    cv2.imwrite(str(vgg / "n000001" / "0001_01.jpg"), small)
    root = tmp_path / "train"
    cli(clustered, "train-root", str(root), str(a), "--vggface", str(vgg))
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    assert all(p.is_symlink() for p in folders)
    loaded = {p.name: [cv2.imread(str(f)) for f in sorted(p.glob("*.jpg"))] for p in folders}
    assert len(loaded) == len(manifest["identities"]) + 1
    assert all(images and images[0].shape == (224, 224, 3) for images in loaded.values())
    assert tree(clustered / "films") == before  # nothing in the workspace moved


def test_export_bad_input(clustered: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    assert "not empty" in cli(clustered, "export", str(full), code=2)
    conn = catalogue.open_catalogue(clustered / "catalogue.sqlite")
    empty = decisions.split(conn, [faces_json(clustered)[0]["id"]])
    decisions.undo(conn)
    conn.close()
    out = tmp_path / "none"
    assert "no faces" in cli(clustered, "export", str(out), "--identity", str(empty), code=2)
    assert "no faces" in cli(
        clustered, "export", str(out), "--reviewed-only", "--identity", str(empty), code=2
    )
    assert not out.exists()
    # A missing crop: clear error naming it, nothing half-written.
    exported = [r for r in faces_json(clustered) if r["passed"] and r["decision"] != "discard"]
    crop = clustered / exported[0]["crop_path"]
    moved = crop.with_suffix(".bak")
    crop.rename(moved)
    try:
        message = cli(clustered, "export", str(out), code=2)
        assert "crop file missing" in message and "--force" in message
    finally:
        moved.rename(crop)
    assert not out.exists() and not list(tmp_path.glob(".none*.part"))
    # Something that is not our export cannot become part of a training root.
    foreign = tmp_path / "foreign"
    (foreign / "arcface224" / "someone").mkdir(parents=True)
    assert "not a reelface export" in cli(
        clustered, "train-root", str(tmp_path / "t"), str(foreign), code=2
    )


def test_cluster_scales_and_respects_constraints() -> None:
    rng = np.random.default_rng(1)
    centres = cluster.normalise(rng.normal(size=(3, 128)))
    x = cluster.normalise(np.repeat(centres, 20, 0) + 0.01 * rng.normal(size=(60, 128)))
    truth = np.repeat(np.arange(3), 20)
    params = cluster.ClusterParams(threshold=0.1, merge_threshold=0.06)
    labels = cluster.cluster(x, params)
    assert scores.pairwise_f(truth, labels)[2] == 1.0
    # Two faces in one frame are never one person, even when identical.
    twins = np.vstack([x[:1], x[:1]])
    single = cluster.ClusterParams(threshold=0.1, merge_threshold=0.06, min_size=1)
    assert cluster.cluster(twins, single).tolist() == [0, 0]
    assert cluster.cluster(twins, single, frames=[(1, 5), (1, 5)]).tolist() == [0, 1]
    # A lone face far from everyone stays unsorted.
    stranger = cluster.normalise(rng.normal(size=(1, 128)))
    labels = cluster.cluster(np.vstack([x, stranger]), params)
    assert labels[-1] == cluster.UNSORTED
    stats = cluster.diagnostics(x, cluster.cluster(x, params))
    assert [s.size for s in stats] == [20, 20, 20] and stats[0].nearest is not None


def test_export_says_what_it_left_out(film: Path, tmp_path: Path, models_dir: Path) -> None:
    root = tmp_path / "ws"
    cli(root, "extract", str(film), "--size", str(CROP), "--json")
    passing = sum(1 for r in faces_json(root) if r["passed"])
    # Before clustering nothing can be exported, and the error says why, with the count.
    message = cli(root, "export", str(tmp_path / "a"), code=2)
    assert f"{len(faces_json(root))} not clustered" in message and "reelface cluster" in message
    cli(root, "cluster", "--all")
    rows = faces_json(root)
    flagged = [r for r in rows if not r["passed"] and r["identity"] is not None]
    cli(root, "decide", "discard", str(next(r for r in rows if r["passed"])["id"]))
    data = json.loads(cli(root, "export", str(tmp_path / "b"), "--json"))
    unsorted = sum(1 for r in rows if r["identity"] is None)
    expected = {
        "discarded by a person": 1,
        "flagged by a rule and not kept by a person": len(flagged),
        "unsorted by clustering (assign them to a person in the review)": unsorted,
    }
    assert data["left_out"] == {k: v for k, v in expected.items() if v}
    assert data["faces"] + sum(data["left_out"].values()) == len(rows)
    assert passing >= data["faces"]
    text = cli(root, "export", str(tmp_path / "c"))
    assert "left out: 1 discarded by a person" in text
