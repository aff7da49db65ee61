"""Acting on a whole identity from the CLI, ids that say what they are, and `faces` filters."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reelface.cli import main
from tests.conftest import CROP

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def cli(root: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["-w", str(root), *args])
    assert result.exit_code == code, result.output
    return result.output


def faces_json(root: Path, *args: str) -> list[dict]:
    return json.loads(cli(root, "faces", "--json", *args))


@pytest.fixture
def clustered(film: Path, tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """A fresh workspace per test (decisions change it): the test film extracted, clustered."""
    root = tmp_path_factory.mktemp("actions") / "ws"
    cli(root, "extract", str(film), "--size", str(CROP), "--json")
    cli(root, "cluster", "--all")
    return root


def mixed_identity(rows: list[dict]) -> int:
    """The identity with the most faces among those that hold both passed and flagged faces."""
    by: dict[int, list[dict]] = {}
    for row in rows:
        if row["identity"] is not None:
            by.setdefault(row["identity"], []).append(row)
    mixed = [i for i, r in by.items() if {f["passed"] for f in r} == {True, False}]
    assert mixed, "the test film's blurred and cut shots of one person should be flagged"
    return max(mixed, key=lambda i: len(by[i]))


def test_decide_on_a_whole_identity(clustered: Path) -> None:
    rows = faces_json(clustered)
    identity = mixed_identity(rows)
    mine = [r for r in rows if r["identity"] == identity]
    flagged = [r["id"] for r in mine if not r["passed"]]
    passed = [r["id"] for r in mine if r["passed"]]
    cli(clustered, "decide", "name", str(identity), "Alice")

    said = cli(clustered, "decide", "discard", "--identity", str(identity), "--flagged")
    assert f"discarded {len(flagged)} flagged faces of identity {identity} (Alice)" in said
    said = cli(clustered, "decide", "keep", "--identity", str(identity), "--passed")
    faces = "face" if len(passed) == 1 else "faces"
    assert f"kept {len(passed)} passed {faces} of identity {identity} (Alice)" in said
    now = {r["id"]: r["decision"] for r in faces_json(clustered)}
    assert {now[f] for f in flagged} == {"discard"} and {now[f] for f in passed} == {"keep"}
    others = [r["id"] for r in rows if r["identity"] != identity]
    assert all(now[f] is None for f in others)  # no other identity's face was touched

    # Merged into another identity, its old id still reaches every face it now shares.
    other = next(r["identity"] for r in rows if r["identity"] not in (None, identity))
    cli(clustered, "decide", "merge", str(other), str(identity))
    said = cli(clustered, "decide", "keep", "--identity", str(other))
    total = sum(r["identity"] in (identity, other) for r in rows)
    assert f"kept {total} faces of identity {identity} (Alice)" in said
    assert f"which identity {other} was merged into" in said
    assert all(r["decision"] == "keep" for r in faces_json(clustered, "--identity", str(other)))

    # One decision row each, undone as one.
    assert "undone" in cli(clustered, "decide", "undo")
    now = {r["id"]: r["decision"] for r in faces_json(clustered)}
    assert {now[f] for f in flagged} == {"discard"}


def test_face_and_identity_ids_are_named(clustered: Path) -> None:
    rows = faces_json(clustered)
    face = rows[3]["id"]
    assert f"kept face {face}" in cli(clustered, "decide", "keep", str(face))
    pair = [str(r["id"]) for r in rows[4:6]]
    assert f"discarded 2 faces ({', '.join(pair)})" in cli(clustered, "decide", "discard", *pair)
    identity = rows[0]["identity"]
    assert f"identity {identity} is 'Bob'" in cli(clustered, "decide", "name", str(identity), "Bob")
    # Ambiguous or contradictory requests are refused before anything is recorded.
    assert "not both" in cli(clustered, "decide", "keep", str(face), "--identity", "1", code=2)
    assert "FACES or --identity" in cli(clustered, "decide", "keep", code=2)
    assert "need --identity" in cli(clustered, "decide", "discard", str(face), "--flagged", code=2)
    assert "no identity 99999" in cli(clustered, "decide", "keep", "--identity", "99999", code=2)


def test_faces_identity_filter_film_filter_and_absolute_crops(clustered: Path) -> None:
    rows = faces_json(clustered)
    identity = mixed_identity(rows)
    only = faces_json(clustered, "--identity", str(identity))
    assert [r["id"] for r in only] == [r["id"] for r in rows if r["identity"] == identity]
    film = str(rows[0]["film_id"])
    both = faces_json(clustered, "--identity", str(identity), "--film", film)
    assert [r["id"] for r in both] == [r["id"] for r in only]
    for row in rows:
        crop = Path(row["crop_file"])
        assert crop.is_absolute() and crop.is_file()
        assert crop.resolve() == (clustered / row["crop_path"]).resolve()  # crop_path: relative
    text = cli(clustered, "faces", "--identity", str(identity))
    assert f"{len(only)} faces of identity {identity}" in text


def test_faces_json_stays_valid_with_progress_drawn(clustered: Path) -> None:
    env = {**os.environ, "REELFACE_PROGRESS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "reelface", "-w", str(clustered), "faces", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    drawn = ANSI.sub("", result.stderr)
    assert "reading faces" in drawn
    assert f"{len(rows)}/{len(rows)}" in drawn
