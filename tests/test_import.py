"""Importing submissions: our export zip, plain identity-foldered zips, deduplication, bad zips."""

from __future__ import annotations

import io
import json
import sqlite3
import stat
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from reelface import synth
from tests.conftest import CROP
from tests.test_identities import cli


@pytest.fixture(scope="module")
def exported(film: Path, tmp_path_factory: pytest.TempPathFactory, models_dir: Path):
    """A workspace built from the synthesised film, clustered, exported as group07_final.zip."""
    base = tmp_path_factory.mktemp("import")
    root = base / "ws"
    cli(root, "extract", str(film), "--size", str(CROP), "--json")
    cli(root, "cluster", "--all")
    cli(root, "export", str(base / "out"), "--zip", "group07_final")
    return root, base / "out" / "group07_final.zip", base / "out" / "manifest.json"


def png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def photo(name: str, scale: float, flip: bool = False) -> bytes:
    """A package photo enlarged so its face is big enough for a CROP-size crop."""
    rgb = synth.load_photo(synth.package_photos()[name])
    rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return png(rgb[:, ::-1] if flip else rgb)


def make_zip(path: Path, files: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def rows(root: Path, query: str) -> list[tuple]:
    conn = sqlite3.connect(root / "catalogue.sqlite")
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_export_zip_into_another_workspace_and_again(exported, tmp_path: Path) -> None:
    _, archive, manifest_path = exported
    manifest = json.loads(manifest_path.read_text())
    other = tmp_path / "ws2"
    out = cli(other, "import", str(archive), "--group", "group07", "--size", str(CROP))
    assert "duplicates skipped" in out, out
    result = json.loads(cli(other, "import", str(archive), "--json"))[0]
    assert result["state"] == "already"  # the same zip twice is a no-op
    ids = json.loads(cli(other, "identities", "--json"))
    folders = {f"group07_{i['folder']}": i["faces"] for i in manifest["identities"]}
    assert {i["name"]: i["faces"] for i in ids} == folders  # one identity per folder, all faces
    faces = json.loads(cli(other, "faces", "--json"))
    files = {Path(f["files"]["ffhq"]).name for f in manifest["faces"]}
    assert {f["source"] for f in faces} == files  # file names kept
    assert all(f["measures"]["upscale"] == pytest.approx(1.0, abs=0.08) for f in faces)
    assert len(rows(other, "SELECT * FROM imports")) == 1
    assert list((other / "imports").iterdir()) == [other / "imports" / result["slug"]]


def test_own_export_into_the_same_workspace_is_all_duplicates(exported) -> None:
    root, archive, _ = exported
    before = rows(root, "SELECT COUNT(*) FROM faces")
    result = json.loads(cli(root, "import", str(archive), "--size", str(CROP), "--json"))[0]
    assert result["duplicates"] == result["files"] > 0
    assert result["faces"] == 0 and not result["links"]
    assert rows(root, "SELECT COUNT(*) FROM faces") == before


def test_plain_folders_dedupe_and_links(exported, tmp_path: Path) -> None:
    _, archive, _ = exported
    other = tmp_path / "ws3"
    cli(other, "import", str(archive), "--size", str(CROP))
    hanks = photo("insightface_tom_hanks", 3.0)
    plain = make_zip(
        tmp_path / "group09_final.zip",
        {
            "group09/astronaut/a.png": photo("skimage_astronaut", 2.0),
            "group09/astronaut/b.png": photo("skimage_astronaut", 2.0, flip=True),
            "group09/hanks/1.png": hanks,
            "group09/hanks/1 copy.png": hanks,  # the same bytes twice: imported once
            "group09/readme.txt": b"our faces",
            "__MACOSX/group09/._a.png": b"junk",
        },
    )
    out = cli(other, "import", str(plain), "--size", str(CROP))
    assert "1 duplicates skipped" in out, out
    ids = {i["name"]: i for i in json.loads(cli(other, "identities", "--json"))}
    assert ids["astronaut"]["faces"] == 2 and ids["hanks"]["faces"] == 1
    # The astronaut of the group's folder is the astronaut of the film: a link is suggested.
    film_ids = {i["id"] for n, i in ids.items() if n.startswith("group07_final_id")}
    assert {o for o, _ in ids["astronaut"]["suggestions"]} & film_ids, ids["astronaut"]
    assert "looks like identity" in out
    # Another group's zip with a file seen before: skipped and counted; a clashing folder name
    # gets the group's prefix.
    again = make_zip(
        tmp_path / "group11.zip",
        {"hanks/x.png": hanks, "hanks/y.png": photo("insightface_tom_hanks", 3.0, flip=True)},
    )
    result = json.loads(cli(other, "import", str(again), "--size", str(CROP), "--json"))[0]
    assert (result["files"], result["duplicates"], result["faces"]) == (2, 1, 1)
    assert result["identities"][0]["name"] == "group11_hanks"
    names = {i["name"] for i in json.loads(cli(other, "identities", "--json"))}
    assert {"group11_hanks", "hanks", "astronaut"} <= names
    assert "identities" in cli(other, "identities")  # the table renders
    # Re-clustering everything keeps the groups' hand-sorted folders as they are.
    before = {i["name"]: i["faces"] for i in json.loads(cli(other, "identities", "--json"))}
    cli(other, "cluster", "--all")
    after = {i["name"]: i["faces"] for i in json.loads(cli(other, "identities", "--json"))}
    assert after == before


def test_bad_zips_leave_nothing(exported, tmp_path: Path) -> None:
    _, archive, _ = exported
    face = photo("skimage_astronaut", 2.0)
    data = archive.read_bytes()
    bad = {
        "traversal": ({"good/a.png": face, "../evil.png": face}, "outside the archive"),
        "absolute": ({"/tmp/evil/a.png": face}, "absolute path"),
        "toplevel": ({"a.png": face, "b.png": face}, "no identity folders"),
        "noimages": ({"docs/readme.txt": b"x"}, "no images"),
    }
    paths = {k: (make_zip(tmp_path / f"{k}.zip", f), m) for k, (f, m) in bad.items()}
    paths["link"] = (make_zip(tmp_path / "link.zip", {"a/x.png": face}, ("a/y.png",)), "link")
    (tmp_path / "corrupt.zip").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    paths["corrupt"] = (tmp_path / "corrupt.zip", "not a readable zip")
    (tmp_path / "truncated.zip").write_bytes(data[: len(data) // 2])
    paths["truncated"] = (tmp_path / "truncated.zip", "not a readable zip")
    # A zip whose central directory is intact but an entry's bytes are damaged.
    damaged = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(".png"))
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    damaged[start : start + 64] = bytes(64)
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    paths["damaged"] = (tmp_path / "damaged.zip", "corrupt")
    root = tmp_path / "ws4"
    for name, (path, message) in paths.items():
        out = cli(root, "import", str(path), "--size", str(CROP), code=2)
        assert message in out and path.name in out, (name, out)
        assert len(out.strip().splitlines()) <= 3, out  # one line (wrapped by the terminal)
    assert not list((root / "imports").iterdir())  # no folder, no hidden temp folder
    assert rows(root, "SELECT COUNT(*) FROM imports") == [(0,)]
    assert rows(root, "SELECT COUNT(*) FROM films") == [(0,)]


def test_a_failure_midway_undoes_the_import(exported, tmp_path: Path) -> None:
    from reelface import workspace
    from reelface.dataset import importer
    from reelface.models import registry
    from reelface.pipeline.extract import Extractor

    _, archive, _ = exported
    ws = workspace.init(tmp_path / "ws5")
    extractor = Extractor(ws, ws.config(), *registry.load(ws.config(), None))
    real, calls = extractor.run, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    extractor.run = flaky
    with extractor, pytest.raises(OSError):
        importer.import_archive(ws, extractor, archive)
    assert len(calls) == 2
    assert not list((ws.root / "imports").iterdir())
    assert rows(ws.root, "SELECT COUNT(*) FROM films") == [(0,)]
    assert rows(ws.root, "SELECT COUNT(*) FROM faces") == [(0,)]
    assert not [p for p in ws.films.iterdir()]


def test_decisions_travel_with_the_export(film: Path, tmp_path: Path, models_dir: Path) -> None:
    """Kept faces (flagged ones too) and an identity's name, exported and imported elsewhere:
    the second workspace counts the same kept faces and exports the flagged-but-kept ones."""
    first = tmp_path / "ws1"
    cli(first, "extract", str(film), "--size", str(CROP), "--json")
    cli(first, "cluster", "--all")
    faces = json.loads(cli(first, "faces", "--json"))
    by_identity: dict[int, list[dict]] = {}
    for face in faces:
        if face["identity"] is not None:
            by_identity.setdefault(face["identity"], []).append(face)
    # The person with the most flagged faces: keep every one of them and one passing face.
    identity, members = max(by_identity.items(), key=lambda kv: sum(not f["passed"] for f in kv[1]))
    flagged = [f["id"] for f in members if not f["passed"]]
    passing = [f["id"] for f in members if f["passed"]]
    assert flagged and passing, members
    cli(first, "decide", "keep", *map(str, [*flagged, passing[0]]))
    cli(first, "decide", "name", str(identity), "Actor A")
    before = {i["name"]: i for i in json.loads(cli(first, "identities", "--json"))}
    assert before["Actor A"]["kept"] == len(flagged) + 1
    cli(first, "export", str(tmp_path / "out1"), "--zip", "group07_final")
    manifest = json.loads((tmp_path / "out1" / "manifest.json").read_text())
    kept_files = {
        Path(e["files"]["ffhq"]).name
        for e in manifest["faces"]
        if e["decision"] == "keep" and not e["passed"]
    }
    assert len(kept_files) == len(flagged)  # the flagged-but-kept faces are in the export

    second = tmp_path / "ws2"
    archive = tmp_path / "out1" / "group07_final.zip"
    result = json.loads(cli(second, "import", str(archive), "--size", str(CROP), "--json"))[0]
    after = {i["name"]: i for i in json.loads(cli(second, "identities", "--json"))}
    assert sum(i["kept"] for i in after.values()) == len(flagged) + 1
    assert result["decisions"] == len(flagged) + 1 and result["lost"] == []
    assert "Actor A" in after, sorted(after)  # the name, not the folder's file-safe form
    assert after["Actor A"]["kept"] == before["Actor A"]["kept"]
    cli(second, "export", str(tmp_path / "out2"))
    again = json.loads((tmp_path / "out2" / "manifest.json").read_text())
    sources = {e["source"] for e in again["faces"] if e["decision"] == "keep"}
    assert kept_files <= sources, kept_files - sources
