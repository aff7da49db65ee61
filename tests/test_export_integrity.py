"""Export says what it left out and why: byte-identical crops once; a full or read-only target
gives one line naming the folder and the fix, exit 2, and nothing half-written."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from reelface.cli import main
from reelface.dataset import export
from tests.conftest import CROP
from tests.test_import import photo


def cli(root: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["-w", str(root), *args], env={"COLUMNS": "250"})
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """A workspace holding the same photos in two folders under other names: two films whose
    crops are byte for byte the same (no video fingerprint can tell)."""
    base = tmp_path_factory.mktemp("twice")
    shots = {
        "a.png": photo("insightface_tom_hanks", 3.0),
        "b.png": photo("insightface_tom_hanks", 3.0, flip=True),
        "c.png": photo("skimage_astronaut", 2.0),
        "d.png": photo("skimage_astronaut", 2.0, flip=True),
    }
    for folder, prefix in (("first", ""), ("second", "copy of ")):
        (base / folder).mkdir()
        for name, data in shots.items():
            (base / folder / f"{prefix}{name}").write_bytes(data)
    root = base / "ws"
    for folder in ("first", "second"):
        cli(root, "extract", str(base / folder), "--size", str(CROP), "--json")
    cli(root, "cluster", "--all")
    return root


def test_identical_crops_are_exported_once(twice: Path, tmp_path: Path) -> None:
    faces = json.loads(cli(twice, "faces", "--json"))
    assert len({f["film"] for f in faces}) == 2
    result = json.loads(cli(twice, "export", str(tmp_path / "out"), "--json"))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    sums = [e["sha256"]["ffhq"] for e in manifest["faces"]]
    assert len(sums) == len(set(sums)) == result["faces"] > 0
    assert result["left_out"][export.DUPLICATE] == result["faces"]  # one copy of each
    text = cli(twice, "export", str(tmp_path / "again"))
    assert f"left out: {result['faces']} {export.DUPLICATE}" in text, text


def _fail_after(calls: int, code: int):
    """Path.write_bytes that writes half of its data and then fails from call `calls` on."""
    real = Path.write_bytes
    count = [0]

    def write_bytes(self: Path, data) -> int:
        count[0] += 1
        if count[0] < calls:
            return real(self, data)
        real(self, bytes(data)[: len(data) // 2])
        raise OSError(code, os.strerror(code), str(self))

    return write_bytes


@pytest.mark.parametrize(
    ("code", "calls", "words"),
    [
        (errno.ENOSPC, 3, ("disk full", "free space", "choose another target")),
        (errno.EDQUOT, 1, ("quota", "choose another target")),
        (errno.EROFS, 1, ("read-only", "choose another target")),
    ],
)
def test_a_target_that_fails_midway_leaves_nothing(
    twice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code, calls, words
) -> None:
    target = tmp_path / "exports" / "group07"
    target.parent.mkdir()
    monkeypatch.setattr(Path, "write_bytes", _fail_after(calls, code))
    out = cli(twice, "export", str(target), "--zip", "group07_final", code=2)
    monkeypatch.undo()
    errors = [line for line in out.splitlines() if line.startswith("reelface: error:")]
    assert len(errors) == 1 and "Traceback" not in out, out
    assert str(target) in errors[0] and all(w in errors[0] for w in words), errors[0]
    assert list(target.parent.iterdir()) == []  # no export, no hidden temp folder
    conn = sqlite3.connect(twice / "catalogue.sqlite")
    recorded = conn.execute("SELECT COUNT(*) FROM exports WHERE path = ?", (str(target),))
    assert recorded.fetchone() == (0,)
    conn.close()
    cli(twice, "export", str(target))  # with room again, the same command works


def test_final_rename_failing_leaves_nothing(
    twice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "group07"

    def rename(source, dest) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "rename", rename)
    out = cli(twice, "export", str(target), code=2)
    monkeypatch.undo()
    assert "disk full" in out and str(target) in out, out
    assert list(tmp_path.iterdir()) == []
