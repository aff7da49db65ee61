"""A workspace on a read-only mount can still be read and exported elsewhere; writes say why."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelface import workspace


def reelface(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REELFACE_WORKSPACE": str(root), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "reelface", *args], env=env, capture_output=True, text=True
    )


@pytest.fixture
def read_only(tmp_path: Path, film: Path, models_dir: Path) -> Iterator[Path]:
    """An extracted, clustered workspace, seen through a read-only bind mount."""
    ws = workspace.init(tmp_path / "ws")
    for args in (("extract", str(film), "--size", "128"), ("cluster", "--all")):
        done = reelface(ws.root, *args)
        assert done.returncode == 0, done.stderr
    view = tmp_path / "view"
    view.mkdir()
    if subprocess.run(["mount", "--bind", str(ws.root), str(view)]).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(view)]).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)])


def test_reading_commands_and_export_elsewhere_work(read_only: Path, tmp_path: Path) -> None:
    catalogue = read_only / "catalogue.sqlite"
    before = hashlib.sha256(catalogue.read_bytes()).hexdigest()
    films = reelface(read_only, "films", "--json")
    assert films.returncode == 0, films.stderr
    assert json.loads(films.stdout)[0]["state"] == "done"
    for command in (("identities", "--json"), ("faces", "--json")):
        done = reelface(read_only, *command)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)
    exported = reelface(read_only, "export", str(tmp_path / "out"))
    assert exported.returncode == 0, exported.stderr
    assert "read-only" in exported.stdout and "not in its history" in exported.stdout
    assert list((tmp_path / "out").rglob("*.png"))
    assert hashlib.sha256(catalogue.read_bytes()).hexdigest() == before


def test_a_writing_command_says_the_catalogue_is_read_only(read_only: Path) -> None:
    faces = json.loads(reelface(read_only, "faces", "--json").stdout)
    done = reelface(read_only, "decide", "keep", str(faces[0]["id"]))
    assert done.returncode == 2
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("reelface: error:")]
    assert "read-only" in line and str(read_only / "catalogue.sqlite") in line
    assert "Traceback" not in done.stderr
