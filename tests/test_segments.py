"""A film cut into segments on several processes gives the rows and files of one process, and
a worker killed with -9 mid-film loses and duplicates nothing."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from reelface import workspace
from reelface.models import registry
from reelface.pipeline import decode, segments
from reelface.pipeline.extract import Extractor


def _rows_and_files(root: Path) -> tuple[list[tuple], dict[str, str]]:
    with sqlite3.connect(root / "catalogue.sqlite") as conn:
        rows = conn.execute(
            "SELECT frame, slot, pts, box, landmarks, matrix, crop_path, measures, reasons, "
            "passed, embedding FROM faces ORDER BY frame, slot"
        ).fetchall()
        film = conn.execute("SELECT last_frame, frames_sampled, state FROM films").fetchone()
    files = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "films").rglob("*.png"))
    }
    assert sorted(files) == sorted(r[6] for r in rows), "orphan or missing crops"
    return [*rows, film], files


def _extract(root: Path, film: Path, source_of=None, progress=None) -> list[str]:
    ws = workspace.init(root)
    cfg = ws.config()
    cfg = replace(cfg, extract=replace(cfg.extract, size=128, interval=3))
    detector, embedder = registry.load(cfg)
    source = source_of(ws, cfg) if source_of else None
    with Extractor(ws, cfg, detector, embedder, source=source) as extractor:
        result = extractor.run(film, progress=progress)
    assert result.state == "done"
    return result.stats.notes


@pytest.fixture(scope="module")
def one_process(film: Path, models_dir: Path, tmp_path_factory) -> tuple[list, dict]:
    root = tmp_path_factory.mktemp("one") / "ws"
    _extract(root, film)
    return _rows_and_files(root)


def test_the_plan_cuts_at_keyframes_and_covers_the_film(film: Path) -> None:
    info = decode.probe(film)
    plan = segments.plan(info, -1, 3, per=8)
    keys = set(segments.keyframes(film))
    assert len(plan) > 2 and plan[0].after == -1 and plan[-1].until is None
    for a, b in zip(plan, plan[1:], strict=False):
        assert a.until == b.after + 1 and a.until in keys


def test_segments_on_two_processes_equal_one_process(
    film: Path, one_process, tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    _extract(root, film, lambda ws, cfg: segments.ProcessSegments(ws.root, cfg, None, 2, per=8))
    rows, files = _rows_and_files(root)
    assert rows == one_process[0]
    assert files == one_process[1]


def test_a_worker_killed_mid_film_is_replaced(film: Path, one_process, tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_one(_frame: int, _stats) -> None:
        # After the first commit the others are still running: kill one of them with -9.
        children = [p for p in multiprocessing.active_children() if p.pid]
        if not killed and children:
            killed.append(children[0].pid)
            os.kill(children[0].pid, signal.SIGKILL)

    root = tmp_path / "ws"
    notes = _extract(
        root,
        film,
        lambda ws, cfg: segments.ProcessSegments(ws.root, cfg, None, 2, per=4),
        progress=kill_one,
    )
    assert killed, "no worker was running to kill"
    assert any("worker process died" in n for n in notes), notes
    rows, files = _rows_and_files(root)
    assert rows == one_process[0]
    assert files == one_process[1]
