"""Copies of one film (a truncated download, the full file, a remux): recognised when extracted,
the shorter superseded so its faces are exported once; `films remove` and `films replace`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from reelface import synth
from reelface.cli import main
from reelface.dataset import export
from reelface.synth import demo
from tests.conftest import CROP


def cli(root: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["-w", str(root), *args], env={"COLUMNS": "250"})
    assert result.exit_code == code, result.output
    return result.output


def remux(source: Path, target: Path) -> None:
    """The same video packets in another container: the same decoded frames."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size:
                packet.stream = stream
                dst.mux(packet)


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> dict[str, Path]:
    """A Matroska film of real people, its first half (a truncated download) and a remux."""
    base = tmp_path_factory.mktemp("copies")
    full = base / "full.mkv"
    synth.make_film(full, demo.scenario(960, 540, eye=80.0, frames=30), size=(960, 540))
    cut = base / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    remux(full, base / "copy.mp4")
    return {"full": full, "cut": cut, "copy": base / "copy.mp4"}


def extract(root: Path, film: Path, code: int = 0) -> dict:
    out = cli(root, "extract", str(film), "--size", str(CROP), "--json", code=code)
    return json.loads(out)[0] if code == 0 else {}


def films(root: Path) -> dict[str, dict]:
    return {Path(f["path"]).name: f for f in json.loads(cli(root, "films", "--json"))}


def exported(root: Path, target: Path) -> tuple[dict, dict]:
    result = json.loads(cli(root, "export", str(target), "--json"))
    return result, json.loads((target / "manifest.json").read_text())


def test_truncated_then_full_exports_each_face_once(
    copies: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    extract(root, copies["cut"], code=2)  # truncated: its faces are kept, the film "failed"
    cli(root, "cluster", "--all")
    faces = json.loads(cli(root, "faces", "--json"))
    flagged = next(f for f in faces if not f["passed"] and f["identity"] is not None)
    cli(root, "decide", "keep", str(flagged["id"]))  # reviewed on the partial film
    result = extract(root, copies["full"])
    cli(root, "cluster", "--all")
    summary, manifest = exported(root, tmp_path / "out")
    sums = [e["sha256"]["ffhq"] for e in manifest["faces"]]
    assert len(sums) == len(set(sums)), "the same face exported twice"
    assert {f["slug"] for f in manifest["films"]} == {result["slug"]}
    listed = films(root)
    cut, full = listed["cut.mkv"], listed["full.mkv"]
    assert cut["superseded_by"] == full["id"] and full["superseded_by"] is None
    assert any(f"film {cut['id']}" in n and "superseded" in n for n in result["notes"]), result
    assert summary["left_out"][export.SUPERSEDED] == cut["faces"]
    # The person's keep moved to the same face of the full film, which is exported though flagged.
    twins = [
        f
        for f in json.loads(cli(root, "faces", "--json"))
        if f["film"] == full["slug"]
        and (f["frame"], f["slot"]) == (flagged["frame"], flagged["slot"])
    ]
    assert [f["decision"] for f in twins] == ["keep"], twins
    assert twins[0]["id"] in {e["face_id"] for e in manifest["faces"]}
    assert "superseded by" in cli(root, "films")  # the table says so too


def test_a_copy_of_a_finished_film_is_not_extracted_again(
    copies: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    extract(root, copies["full"])
    for name in ("cut", "copy"):  # a truncated copy and a remux: the same decoded frames
        result = extract(root, copies[name])
        assert result["state"] == "duplicate", result
        assert result["faces_passed"] + result["faces_flagged"] == 0
        assert any("same video as film 1" in n for n in result["notes"]), result
    listed = films(root)
    assert listed["cut.mkv"]["superseded_by"] == listed["copy.mp4"]["superseded_by"] == 1
    assert listed["cut.mkv"]["faces"] == listed["copy.mp4"]["faces"] == 0
    assert extract(root, copies["cut"])["state"] == "skipped"  # and stays so
    out = cli(root, "films", "remove", "1")  # the full film goes: its copies count again
    assert "film 2 (cut-" in out and "no longer superseded" in out, out
    assert all(f["superseded_by"] is None for f in films(root).values())


def test_films_replace_and_remove(copies: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "ws"
    extract(root, copies["cut"], code=2)
    extract(root, copies["full"])
    listed = films(root)
    cut, full = listed["cut.mkv"], listed["full.mkv"]
    # The person prefers the other copy: the automatic choice is reversed.
    out = cli(root, "films", "replace", full["slug"], str(cut["id"]))
    assert f"film {full['id']}" in out and "replaced by" in out, out
    listed = films(root)
    assert listed["full.mkv"]["superseded_by"] == cut["id"]
    assert listed["cut.mkv"]["superseded_by"] is None
    cli(root, "cluster", "--all")
    _, manifest = exported(root, tmp_path / "out")
    assert {f["slug"] for f in manifest["films"]} == {cut["slug"]}
    # Removing it: rows gone in one go, its folder moved out of the way and named.
    crops = sorted(p.name for p in (root / "films" / full["slug"] / "faces").iterdir())
    out = cli(root, "films", "remove", str(copies["full"]))
    assert f"removed film {full['id']}" in out and f"{full['faces']} faces" in out, out
    moved = root / "removed" / full["slug"]
    assert str(moved) in out.replace("\n", "")
    assert sorted(p.name for p in (moved / "faces").iterdir()) == crops
    assert not (root / "films" / full["slug"]).exists()
    assert not (root / "cache" / "thumbs" / "films" / full["slug"]).exists()
    assert set(films(root)) == {"cut.mkv"}
    conn = sqlite3.connect(root / "catalogue.sqlite")
    left = conn.execute("SELECT COUNT(*) FROM faces WHERE film_id = ?", (full["id"],)).fetchone()
    conn.close()
    assert left == (0,)
    out = cli(root, "films", "remove", "no-such-film", code=2)
    assert "no film 'no-such-film'" in out and len(out.strip().splitlines()) <= 3, out
    assert "films in" in cli(root, "films")  # the bare group still lists


def test_two_films_that_open_alike_stay_two(tmp_path: Path, models_dir: Path) -> None:
    """Two films opening on the same bit-exact shot (a studio's logo): the same first packets,
    but other lengths and other faces, so neither supersedes the other."""
    shots = demo.scenario(640, 360, eye=60.0, frames=25)
    opener = replace(
        shots[0], frames=120
    )  # longer than the fingerprint and the encoder's lookahead
    first, second = tmp_path / "first.mkv", tmp_path / "second.mkv"
    synth.make_film(first, [opener, *shots[1:3]], size=(640, 360))
    synth.make_film(second, [opener, *shots[3:]], size=(640, 360))
    from reelface.catalogue import same_start
    from reelface.pipeline import decode

    assert same_start(decode.fingerprint(first), decode.fingerprint(second))
    root = tmp_path / "ws"
    extract(root, first)
    result = extract(root, second)
    assert result["state"] == "done" and result["faces_passed"] > 0, result
    assert not any("superseded" in n for n in result["notes"]), result["notes"]
    assert all(f["superseded_by"] is None for f in films(root).values())


def test_fingerprints_tell_copies_from_other_films(copies: dict[str, Path]) -> None:
    from reelface.catalogue import same_start
    from reelface.pipeline import decode

    full, cut, copy = (decode.fingerprint(copies[k]) for k in ("full", "cut", "copy"))
    other = decode.fingerprint(Path(__file__))  # not a film: no fingerprint
    assert full == copy and same_start(full, cut) and other == []
    digest = hashlib.sha256(b"x").hexdigest()[:16]
    assert not same_start(full, [digest, *full[1:]]) and not same_start(full, [])
