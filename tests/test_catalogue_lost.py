"""An emptied, deleted or overwritten catalogue stops every command instead of being replaced."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from reelface import synth
from reelface.cli import main


def run(ws: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["-w", str(ws), *args])
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture()
def extracted(tmp_path: Path) -> Path:
    """A workspace with one image folder of real faces extracted and a backup of it."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, path in synth.package_photos().items():
        shutil.copy(path, photos / f"{name}{path.suffix}")
    ws = tmp_path / "ws"
    run(ws, "init")
    run(ws, "extract", str(photos), "--size", "128", "--min-face", "0.3")
    assert json.loads(run(ws, "films", "--json"))[0]["faces"] > 0
    assert "backup:" in run(ws, "backup")
    return ws


@pytest.mark.parametrize("damage", ["truncate", "delete", "overwrite"])
def test_a_lost_catalogue_stops_commands_and_restore_brings_it_back(
    extracted: Path, damage: str
) -> None:
    catalogue = extracted / "catalogue.sqlite"
    if damage == "truncate":
        catalogue.write_bytes(b"")
    elif damage == "delete":
        catalogue.unlink()
    else:
        catalogue.write_bytes(b"not a database at all\n" * 10)
    before = catalogue.read_bytes() if catalogue.exists() else None
    for command in (["films"], ["faces", "--json"], ["identities"], ["init"]):
        output = run(extracted, *command, code=2)
        lines = [line for line in output.splitlines() if "error" in line]
        assert len(lines) == 1 and str(catalogue) in lines[0] and "reelface restore" in lines[0]
    # Nothing was changed: no new empty catalogue took its place.
    assert (catalogue.read_bytes() if catalogue.exists() else None) == before

    output = run(extracted, "restore")
    assert "restored" in output
    assert json.loads(run(extracted, "films", "--json"))[0]["faces"] > 0
    if before is not None:  # the damaged file is kept beside the restored one, not deleted
        assert [p.read_bytes() for p in extracted.glob("catalogue.broken-*.sqlite")] == [before]


def test_a_workspace_never_used_gets_its_catalogue_made(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run(ws, "init")
    (ws / "catalogue.sqlite").unlink()  # nothing extracted, no backups: nothing to lose
    assert json.loads(run(ws, "films", "--json")) == []


def test_a_command_leaves_a_backup_of_what_it_wrote(tmp_path: Path) -> None:
    import sqlite3

    photos = tmp_path / "photos"
    photos.mkdir()
    name, path = next(iter(synth.package_photos().items()))
    shutil.copy(path, photos / f"{name}{path.suffix}")
    ws = tmp_path / "ws"
    run(ws, "init")
    run(ws, "extract", str(photos), "--size", "128", "--min-face", "0.3")
    (newest,) = sorted((ws / "backups").glob("catalogue-*.sqlite"))
    with sqlite3.connect(newest) as conn:
        assert conn.execute("SELECT COUNT(*) FROM films").fetchone() == (1,)
