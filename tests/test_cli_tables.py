"""The CLI's terminal output: tables that stay correct at 80 and 60 columns, progress on stderr.

Tables are read back from the real command (a subprocess with $COLUMNS set, as a terminal
would): every id in the first column must be an id of the catalogue, in order, and every kind
and state whole, on one line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from reelface import catalogue, jobs
from reelface.cli import main
from reelface.cli.evaluate import eval_command
from reelface.models import install
from tests.conftest import CROP
from tests.test_evaluate import lab_arcface, testset, tiny_checkpoint  # noqa: F401 (fixtures)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# A long error with a path in it, as extraction failures look.
ERROR = (
    "cannot decode frame 1834 of /data/films/incoming/a very long film name (1999).mkv: "
    "the stream ended in the middle of a packet; run `reelface jobs retry` once it is copied"
)


def cli(root: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["-w", str(root), *args])
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(scope="module")
def workspace(film: Path, tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """A real workspace: the test film extracted and clustered, and a history of jobs."""
    root = tmp_path_factory.mktemp("tables") / "ws"
    cli(root, "extract", str(film), "--size", str(CROP), "--json")
    cli(root, "cluster", "--all")
    conn = catalogue.open_catalogue(root / "catalogue.sqlite")
    try:
        for n in range(7):  # ids past 9, so a cut id would show as its first digit
            slug = f"a-long-film-name-of-the-lab-number-{n}"
            params = {"path": f"films/{slug}/{slug}.mp4", "slug": slug, "hash": f"{n:08d}"}
            extract, _ = jobs.enqueue_film(conn, params)
            if n % 2:
                jobs.claim(conn, extract, "worker", None)
                jobs.finish(conn, extract, "failed", ERROR)
        jobs.enqueue(conn, "evaluate", {"name": "evaluation of the first long training run"})
    finally:
        conn.close()
    return root


def run(root: Path, columns: int, *args: str) -> str:
    """The real command's stdout in a terminal `columns` wide."""
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50"}
    result = subprocess.run(
        [sys.executable, "-m", "reelface", "-w", str(root), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def read_table(text: str) -> tuple[list[str], list[list[str]]]:
    """(headers, one list of cell lines per column and row) of the first table in `text`."""
    lines = text.splitlines()
    head = next(line for line in lines if line.startswith("┃"))
    headers = [h.strip() for h in head.split("┃")[1:-1]]
    rows: list[list[list[str]]] = []
    for line in lines:
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.split("│")[1:-1]]
        assert len(cells) == len(headers), line
        if cells[0] or not rows:
            rows.append([[c] for c in cells])
        else:
            for column, cell in zip(rows[-1], cells, strict=True):
                column.append(cell)
    return headers, rows


def key_cells(rows: list[list[list[str]]], column: int) -> list[str]:
    """A key column's values: each must be whole, on the row's first line only."""
    values = []
    for row in rows:
        first, *more = row[column]
        assert not any(more), f"{row[column]!r} was wrapped or cut"
        values.append(first)
    return values


WIDTHS = pytest.mark.parametrize("columns", [80, 60])


@WIDTHS
def test_jobs_list_keeps_ids_kinds_and_errors(workspace: Path, columns: int) -> None:
    text = run(workspace, columns, "jobs", "list")
    assert all(len(line) <= columns for line in text.splitlines()), text
    headers, rows = read_table(text)
    conn = catalogue.open_catalogue(workspace / "catalogue.sqlite")
    try:
        expected = jobs.listing(conn, (), 50)
    finally:
        conn.close()
    assert key_cells(rows, headers.index("id")) == [str(j.id) for j in expected], text
    assert key_cells(rows, headers.index("kind")) == [j.kind for j in expected], text
    assert key_cells(rows, headers.index("state")) == [j.state for j in expected], text
    # The error folds but loses no character (only the line breaks between words go).
    errors = ["".join(row[headers.index("error")]) for row in rows]
    failed = [e for e, j in zip(errors, expected, strict=True) if j.state == "failed"]
    assert failed and all(e == ERROR.replace(" ", "") for e in (f.replace(" ", "") for f in failed))


@WIDTHS
def test_identities_and_faces_tables_keep_their_ids(workspace: Path, columns: int) -> None:
    faces = json.loads(cli(workspace, "faces", "--json"))
    listed = json.loads(cli(workspace, "identities", "--json"))
    text = run(workspace, columns, "identities")
    assert all(len(line) <= columns for line in text.splitlines()), text
    headers, rows = read_table(text)
    assert key_cells(rows, 0) == [str(i["id"]) for i in listed], text
    assert key_cells(rows, headers.index("faces")) == [str(i["faces"]) for i in listed]
    text = run(workspace, columns, "faces")
    assert all(len(line) <= columns for line in text.splitlines()), text
    headers, rows = read_table(text)
    assert headers[:2] == ["face", "identity"], text
    assert key_cells(rows, 0) == [str(f["id"]) for f in faces], text
    assert key_cells(rows, 1) == [str(f["identity"] or "") for f in faces], text


@WIDTHS
def test_models_list_fits(workspace: Path, columns: int, models_dir: Path) -> None:
    text = run(workspace, columns, "models", "list")
    assert all(len(line) <= columns for line in text.splitlines()), text
    headers, rows = read_table(text)
    names = ["".join(row[0]).replace(" ", "") for row in rows]
    assert names == [r.name.replace(" ", "") for r in install.status(models_dir)], text
    assert all(row[headers.index("state")][0].startswith("ok") for row in rows), text


def counts(stderr: str) -> list[tuple[int, int]]:
    """Every 'done/total' the progress bar drew, in order."""
    return [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+)", ANSI.sub("", stderr))]


def assert_climbs(seen: list[tuple[int, int]]) -> None:
    assert seen, "no progress was drawn"
    total = seen[-1][1]
    done = [d for d, t in seen if t == total]
    assert done == sorted(done) and done[-1] == total and len(set(done)) > 2, seen


def test_models_install_force_shows_its_steps(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sdist `models install` checks, rebuilt from the installed files (same SHA-256s).
    sdist = tmp_path / "scrfd-0.3.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(models_dir / install.DETECTOR_FILE, install.PREFIX + install.DETECTOR_MEMBER)
        for member in install.SAMPLES:
            tar.add(install.samples_dir(models_dir) / Path(member).name, install.PREFIX + member)
    monkeypatch.setenv("REELFACE_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("REELFACE_PROGRESS", "1")
    result = CliRunner().invoke(
        main, ["-w", str(tmp_path / "ws"), "models", "install", "--sdist", str(sdist), "--force"]
    )
    assert result.exit_code == 0, result.output
    assert_climbs(counts(result.stderr))
    assert "quantising" in ANSI.sub("", result.stderr)
    assert all(r.ok for r in install.status(tmp_path / "models"))


def test_eval_json_stays_clean_with_progress(
    testset: Path,  # noqa: F811
    lab_arcface: Path,  # noqa: F811
    tiny_checkpoint: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REELFACE_PROGRESS", "1")
    args = ["--model", str(tiny_checkpoint), "--testset", str(testset)]
    args += ["--arcface", str(lab_arcface), "--out", str(tmp_path / "r"), "--device", "cpu"]
    result = CliRunner().invoke(eval_command, [*args, "--baseline", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # nothing but the report on stdout
    assert set(report["mean"]) == {"model", "no swap"}
    seen = counts(result.stderr)
    assert_climbs(seen)
    assert seen[-1] == (7, 7)  # judge, generator, detector, faces, model, no swap, report
    assert "swapping and judging" in ANSI.sub("", result.stderr)
