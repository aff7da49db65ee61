"""Errors are one line everywhere: the CLI, the daemon's log, and a film of only small faces."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import reelface
from reelface import errors, synth, workspace
from reelface.cli import main
from reelface.cli.group import ReelfaceGroup
from reelface.daemon import logs, settings
from reelface.daemon.service import Daemon
from reelface.synth import demo


@pytest.fixture(scope="module")
def small_faces_film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640×360 film: every face is far too small for the default 1024 px crops."""
    path = tmp_path_factory.mktemp("small-faces") / "wide shot.mp4"
    synth.make_film(path, demo.scenario(640, 360, eye=60, frames=10), size=(640, 360))
    return path


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


@contextmanager
def daemon_running(ws: workspace.Workspace) -> Iterator[Daemon]:
    """The real daemon service on a thread (signals stay the test runner's), quick to react."""
    cfg = replace(
        settings.load(ws),
        stable_seconds=0.5,
        close_settle_seconds=0.2,
        scan_seconds=0.5,
        poll_seconds=0.05,
        gpus=0,
    )
    service = Daemon(ws, cfg, None, logs.setup(ws, console=False))
    thread = threading.Thread(target=service.run, name="daemon")
    thread.start()
    try:
        yield service
    finally:
        service.request_stop("test over")
        thread.join(120)
        assert not thread.is_alive()


def jobs_of(root: Path) -> list[tuple]:
    conn = sqlite3.connect(root / "catalogue.sqlite", timeout=30)
    try:
        return conn.execute("SELECT id, kind, state, error FROM jobs ORDER BY id").fetchall()
    finally:
        conn.close()


def wait_until_ended(root: Path, count: int, timeout: float = 180) -> list[tuple]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = jobs_of(root)
        if len(rows) == count and all(r[2] in ("done", "failed", "cancelled") for r in rows):
            return rows
        time.sleep(0.1)
    pytest.fail(f"jobs did not end in {timeout} s: {jobs_of(root)}")


def test_small_faces_film_clusters_to_zero_identities_as_a_job(
    small_faces_film: Path, tmp_path: Path, models_dir: Path
) -> None:
    ws = workspace.init(tmp_path / "ws")  # default config: 1024 px crops, cluster after extract
    with daemon_running(ws) as service:
        shutil.copy(small_faces_film, settings.inbox_path(ws, service.cfg) / small_faces_film.name)
        rows = wait_until_ended(ws.root, 2)
    (extract_id, _, extracted, _), (cluster_id, kind, clustered, error) = rows
    assert extracted == "done" and kind == "cluster"
    assert (clustered, error) == ("done", None)
    extract_log = logs.job_log_path(ws, extract_id).read_text()
    assert "0 passed the rules" in extract_log
    found = re.search(r"the largest is (\d+) px wide .*: --size (\d+) would keep it", extract_log)
    assert found, extract_log
    cluster_log = logs.job_log_path(ws, cluster_id).read_text()
    assert "0 identities from 0 faces" in cluster_log and "Traceback" not in cluster_log
    assert cli("-w", str(ws.root), "identities", "--json").split("\n", 1)[0] == "[]"
    # The size the summary names does keep the largest face.
    size = found.group(2)
    args = ["extract", str(small_faces_film), "--size", size, "--force", "--json"]
    (again,) = json.loads(cli("-w", str(ws.root), *args))
    assert again["faces_passed"] + again["faces_flagged"] >= 1


def test_the_extraction_summary_names_the_largest_face_and_a_size(
    small_faces_film: Path, tmp_path: Path, models_dir: Path
) -> None:
    root = tmp_path / "ws"
    output = cli("-w", str(root), "extract", str(small_faces_film))
    assert output.splitlines()[0] == f"workspace: {root.resolve()} (-w)"
    note = " ".join(output.split())  # Rich wraps long notes at the terminal's width
    assert re.search(r"note: all \d+ faces were too small for 1024 px crops", note), output
    assert re.search(r"the largest is \d+ px wide .*--size \d+ would keep it", note), output


def test_failed_jobs_log_their_error_as_one_line(tmp_path: Path, models_dir: Path) -> None:
    """Tasks raising WorkspaceError, ExportError, EvalError, TrainError, DataError, TrainError."""
    ws = workspace.init(tmp_path / "ws")
    root = str(ws.root)
    queued = {
        "no film 'nope'": ["cluster", "-p", "film=nope"],
        "nothing to export": ["export", "-p", f"out={tmp_path / 'export'}"],
        "no such test-set folder": [
            "evaluate", "-p", "model=m.pt", "-p", f"testset={tmp_path / 'none'}",
            "-p", "arcface=a.pt", "-p", f"out={tmp_path / 'eval'}", "--first",
        ],
        "no identity network": [
            "train", "-p", f'data=["{tmp_path}"]', "-p", f"out={tmp_path / 'run'}", "--first",
        ],
        "no such folder": [
            "train", "-p", f'data=["{tmp_path / "none"}"]', "-p", f"out={tmp_path / 'run1'}",
            "-p", f"arcface={tmp_path / 'a.pt'}", "-p", "device=cpu", "--first",
        ],
        "no latest.pt to resume from": [
            "train", "-p", f'data=["{tmp_path}"]', "-p", f"out={tmp_path / 'run2'}",
            "-p", "resume=true", "--first",
        ],
    }  # fmt: skip
    for args in queued.values():
        cli("-w", root, "jobs", "add", *args)
    with daemon_running(ws):
        rows = wait_until_ended(ws.root, len(queued))
    daemon_log = logs.daemon_log_path(ws).read_text()
    assert "Traceback" not in daemon_log, daemon_log
    for (job_id, kind, state, error), expected in zip(rows, queued, strict=True):
        assert state == "failed" and expected in error and "\n" not in error, (kind, error)
        failed = [line for line in daemon_log.splitlines() if f"job {job_id} failed" in line]
        assert len(failed) == 1 and expected in failed[0], daemon_log
        job_log = logs.job_log_path(ws, job_id).read_text()
        assert "Traceback" not in job_log, job_log
        # `reelface jobs list` shows the same one line.
        listed = json.loads(cli("-w", root, "jobs", "list", "--json"))
        assert {j["id"]: j["error"] for j in listed}[job_id] == error


def _error_classes() -> list[type[BaseException]]:
    """Every public exception class reelface defines, in every module of the package."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(reelface.__path__, "reelface."):
        if info.name.endswith("__main__"):  # runs the CLI when imported
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra (ray) that is not installed
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Exception)
                and value.__module__ == module.__name__
                and not value.__name__.startswith("_")
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


ERROR_CLASSES = _error_classes()


def test_the_package_defines_the_error_classes_the_issue_names() -> None:
    names = {cls.__name__ for cls in ERROR_CLASSES}
    named = {"ClusterError", "ExportError", "TrainError", "EvalError", "DataError", "JobError"}
    assert named <= names, names


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_is_one_line_in_the_cli(cls: type[BaseException]) -> None:
    group = ReelfaceGroup("reelface")

    @group.command()
    def fail() -> None:
        raise cls("config.toml [extract]: size must be int\n(fix the file)")

    result = CliRunner().invoke(group, ["fail"])
    assert result.exit_code == 2, result.output
    message = "config.toml [extract]: size must be int (fix the file)"
    assert result.output == f"reelface: error: {message}\n"
    assert errors.is_own(cls("x"))  # so the daemon's log gives it one line too


def test_a_bug_still_shows_its_traceback() -> None:
    group = ReelfaceGroup("reelface")

    @group.command()
    def fail() -> None:
        raise ZeroDivisionError("a bug")

    result = CliRunner().invoke(group, ["fail"])
    assert isinstance(result.exception, ZeroDivisionError)
    assert not errors.is_own(ZeroDivisionError("a bug"))
    assert not errors.is_own(click.UsageError("bad option"))
