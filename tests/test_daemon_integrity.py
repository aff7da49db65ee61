"""Nothing lost, nothing silently wrong: writers that come back, folders we cannot list, and a
`daemon status` that tells what is really in inbox/failed/ and what a killed daemon left."""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from reelface import catalogue, jobs
from reelface.cli import main
from reelface.daemon import settings
from reelface.daemon.inbox import Claimed, Inbox
from reelface.daemon.service import Daemon
from tests.test_daemon_inbox import make_inbox


@pytest.fixture
def inbox(tmp_path: Path) -> tuple[Inbox, list[Claimed]]:
    return make_inbox(tmp_path / "inbox", tmp_path / "films", "test-integrity")


def unlistable(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """`folder` cannot be listed: chmod 000, and (root reads through that) os.scandir refusing."""
    folder.chmod(0)
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(folder):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def status(root: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["-w", str(root), "daemon", "status", *args])
    assert result.exit_code == 0, result.output
    return result.output


# -- 5: claimed too early ---------------------------------------------------------------------


def test_a_file_still_open_for_writing_is_not_claimed(inbox, film: Path, caplog) -> None:
    box, claimed = inbox
    target = box.root / "resumable.mp4"
    with open(target, "ab") as writer:  # as `curl -C -` holds it while the network stalls
        writer.write(film.read_bytes())
        writer.flush()
        with caplog.at_level(logging.INFO, "test-integrity"):
            box.tick(now=0.0)
            box.tick(now=60.0)  # quiet far longer than stable_seconds, but still open
        assert not claimed and target.exists()
        assert "open for writing (pid " in caplog.text
    box.closed.add(target)  # the close-after-write event inotify reports
    box.events.add(target)
    box.tick(now=60.5)
    assert not claimed  # settling after the close
    box.tick(now=61.6)
    assert [c.source for c in claimed] == ["resumable.mp4"]
    assert claimed[0].path.read_bytes() == film.read_bytes()


def test_download_names_wait_for_their_final_name(inbox, film: Path, caplog) -> None:
    box, claimed = inbox
    data = film.read_bytes()
    names = ["a.mp4.part", "b.mp4.crdownload", "c.mp4.partial", "d.mp4.tmp", ".e.mp4.Xy12Ab"]
    for name in names:
        (box.root / name).write_bytes(data)
    with caplog.at_level(logging.INFO, "test-integrity"):
        box.tick(now=0.0)
        box.tick(now=100.0)
    assert not claimed and all((box.root / name).exists() for name in names)
    assert "a.mp4.part is a download in progress" in caplog.text
    assert "not a video file" not in caplog.text
    os.rename(box.root / "a.mp4.part", box.root / "a.mp4")  # the download finished
    box.tick(now=101.0)
    box.tick(now=107.0)
    assert [c.source for c in claimed] == ["a.mp4"]


def test_a_download_resumed_after_it_failed_replaces_its_failed_copy(inbox, film: Path) -> None:
    box, claimed = inbox
    data, failed = film.read_bytes(), box.root / "failed"
    target = box.root / "film.mp4"
    # The writer stalls past the stability window twice, then finishes; each time it starts
    # over at the same path (the cut-off file was moved away), as curl -C - and rsync do.
    for step, part in enumerate((len(data) // 4, len(data) // 2)):
        target.write_bytes(data[:part])
        box.tick(now=100.0 * step)
        box.tick(now=100.0 * step + 10)
        assert not target.exists() and not claimed
        assert (failed / "film.mp4").read_bytes() == data[:part], "the longer part is kept"
        assert sorted(p.name for p in failed.iterdir()) == ["film.mp4", "film.mp4.reason.txt"]
    target.write_bytes(data)
    box.tick(now=300.0)
    box.tick(now=310.0)
    assert [c.source for c in claimed] == ["film.mp4"] and claimed[0].path.read_bytes() == data
    assert not list(failed.iterdir()), "the cut-off copy stayed in failed/"


def test_a_failed_film_that_keeps_growing_is_retried(inbox, film: Path) -> None:
    box, claimed = inbox
    data, failed = film.read_bytes(), box.root / "failed"
    (box.root / "sub").mkdir()
    (box.root / "sub" / "growing.mp4").write_bytes(data[: len(data) // 3])
    (box.root / "notes.mp4").write_text("shopping list\n" * 50)
    box.tick(now=0.0)
    box.tick(now=10.0)
    assert (failed / "sub" / "growing.mp4").exists() and not claimed
    # Its writer still had it open through the move (where /proc cannot show it) and finishes.
    with open(failed / "sub" / "growing.mp4", "ab") as writer:
        writer.write(data[len(data) // 3 :])
    box.tick(now=20.0)
    assert not claimed  # changed just now: it waits to be quiet like any other copy
    box.tick(now=30.0)
    assert [c.source for c in claimed] == [str(Path("sub") / "growing.mp4")]
    assert claimed[0].path.read_bytes() == data
    assert not (failed / "sub" / "growing.mp4").exists()
    assert not (failed / "sub" / "growing.mp4.reason.txt").exists()
    box.tick(now=40.0)
    box.tick(now=50.0)  # an unchanged failure stays failed
    assert (failed / "notes.mp4").exists() and (failed / "notes.mp4.reason.txt").exists()
    assert len(claimed) == 1


# -- 8: a folder that cannot be listed --------------------------------------------------------


def test_an_unlistable_folder_is_logged_once_with_the_fix(
    inbox, film: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    box, claimed = inbox
    locked = box.root / "season 2"
    locked.mkdir()
    (locked / "episode.mp4").write_bytes(film.read_bytes())
    unlistable(monkeypatch, locked)
    with caplog.at_level(logging.INFO, "test-integrity"):
        for step in range(5):
            box.tick(now=10.0 * step)
    lines = [r.getMessage() for r in caplog.records if "cannot list" in r.getMessage()]
    assert len(lines) == 1, lines
    assert str(locked) in lines[0] and "chmod u+rx" in lines[0] and not claimed
    monkeypatch.undo()
    locked.chmod(0o755)
    box.tick(now=100.0)
    box.tick(now=110.0)
    assert [c.source for c in claimed] == [str(Path("season 2") / "episode.mp4")]


def test_status_names_an_unlistable_inbox_folder(ws, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = ws.root / "inbox" / "private"
    locked.mkdir(parents=True)
    unlistable(monkeypatch, locked)
    try:
        text = status(ws.root)
        data = json.loads(status(ws.root, "--json"))
    finally:
        monkeypatch.undo()
        locked.chmod(0o755)
    assert f"cannot list {locked}" in text and "chmod u+rx" in text
    assert len(data["inbox_unlistable"]) == 1 and str(locked) in data["inbox_unlistable"][0]


# -- 12: what `daemon status` says -------------------------------------------------------------


def test_status_counts_what_is_in_inbox_failed(ws, film: Path) -> None:
    box, _ = make_inbox(ws.root / "inbox", ws.films, "test-integrity")
    for n in range(12):
        (box.root / f"bad {n}.mp4").write_text(f"not a film {n}\n" * 40)
    box.tick(now=0.0)
    box.tick(now=10.0)
    assert len(list((box.root / "failed").glob("*.mp4"))) == 12
    text = status(ws.root)
    assert "0 failed" in text  # no job failed: these never became jobs …
    assert "inbox/failed: 12 film(s) not readable; newest:" in text  # … but they are there
    shown = [line for line in text.splitlines() if line.startswith("  bad ")]
    assert len(shown) == 3 and all("not a readable video" in line for line in shown)
    data = json.loads(status(ws.root, "--json"))
    assert data["inbox_failed"] == 12 and len(data["inbox_failed_newest"]) == 5
    assert "not a readable video" in data["inbox_failed_newest"][0]["reason"]


def test_status_after_a_dead_daemon_says_the_job_resumes_and_it_does(ws) -> None:
    conn = catalogue.open_catalogue(ws.catalogue_path)
    params = {"path": "films/x/film.mp4", "slug": "film-x", "hash": "0", "source": "film.mp4"}
    first, _ = jobs.enqueue_film(conn, params, cluster=False)
    worn, _ = jobs.enqueue_film(conn, {**params, "source": "worn.mp4"}, cluster=False)
    # A worker that is gone (as after `kill -9`): its rows still say running.
    assert jobs.claim(conn, first, "elsewhere:999999", None)
    assert jobs.claim(conn, worn, "elsewhere:999999", None)
    with catalogue.transaction(conn):  # and this one was killed in every attempt it had
        conn.execute("UPDATE jobs SET attempts = ? WHERE id = ?", (5, worn))
    assert settings.DaemonConfig().max_attempts == 5
    text = status(ws.root)
    assert (
        f"job {first} (extract film.mp4) was running when the daemon stopped; it resumes at the "
        "next `reelface daemon start`" in text
    )
    assert f"job {worn} (extract worn.mp4) was running" in text and "fails it" in text
    assert "on elsewhere:999999" not in text  # not shown as if it still ran
    data = json.loads(status(ws.root, "--json"))
    assert len(data["interrupted"]) == 2
    # What the start-up path really does with them.
    Daemon(ws, settings.load(ws))._recover(conn)
    assert jobs.state_of(conn, first) == "queued" and jobs.state_of(conn, worn) == "failed"
    assert [j.id for j in jobs.runnable(conn)] == [first]
    conn.close()
