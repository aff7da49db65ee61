"""The inbox on real files with a fake clock: when a copy is complete, what is claimed or left."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from reelface.daemon.inbox import Claimed, Inbox


def make_inbox(root: Path, films: Path, log: str = "test-inbox") -> tuple[Inbox, list[Claimed]]:
    """An inbox on real folders whose claims are collected in a list (5 s stable, 1 s settle)."""
    claimed: list[Claimed] = []
    box = Inbox(
        root=root,
        films=films,
        stable_seconds=5.0,
        close_settle_seconds=1.0,
        scan_seconds=0.0,
        on_claim=claimed.append,
        is_known=lambda digest: None,
        log=logging.getLogger(log),
    )
    box.root.mkdir(parents=True, exist_ok=True)
    return box, claimed


@pytest.fixture
def inbox(tmp_path: Path) -> tuple[Inbox, list[Claimed]]:
    return make_inbox(tmp_path / "inbox", tmp_path / "films")


def test_a_growing_file_waits_until_stable(inbox, film: Path) -> None:
    box, claimed = inbox
    data = film.read_bytes()
    target = box.root / "slow film.mp4"
    with open(target, "wb") as handle:
        for step in range(6):
            handle.write(data[step * len(data) // 6 : (step + 1) * len(data) // 6])
            handle.flush()
            os.utime(target, ns=(step * 10**9, step * 10**9))  # the copy touches it each second
            box.tick(now=100.0 + step)
            assert target.exists() and not claimed, f"claimed after chunk {step}"
    box.tick(now=105.5)  # written 1.0 s ago but no close event seen: not yet
    assert not claimed
    box.tick(now=111.0)
    assert [c.source for c in claimed] == ["slow film.mp4"]
    assert claimed[0].path.read_bytes() == data and not target.exists()


def test_close_after_write_claims_sooner(inbox, film: Path) -> None:
    box, claimed = inbox
    target = box.root / "done.mp4"
    target.write_bytes(film.read_bytes())
    box.tick(now=10.0)
    box.closed.add(target)
    box.events.add(target)
    box.tick(now=10.2)
    assert not claimed
    box.tick(now=11.3)
    assert len(claimed) == 1


def test_odd_names_subfolders_and_things_left_alone(inbox, film: Path, tmp_path: Path) -> None:
    box, claimed = inbox
    names = ["a film with  spaces.mp4", "фильм 映画 🎬.mp4", "x" * 200 + ".mp4"]
    (box.root / "season 1" / "disc 2").mkdir(parents=True)
    for index, name in enumerate(names):
        where = box.root / "season 1" / "disc 2" if index == 0 else box.root
        (where / name).write_bytes(film.read_bytes() + bytes([index]) * 16)  # distinct hashes
    (box.root / "notes.txt").write_text("not a film")
    (box.root / ".partial.mp4").write_bytes(b"hidden: a download in progress")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(film.read_bytes())
    (box.root / "link.mp4").symlink_to(outside / "secret.mp4")
    (box.root / "linked folder").symlink_to(outside)
    box.tick(now=0.0)
    box.tick(now=10.0)
    assert sorted(Path(c.source).name for c in claimed) == sorted(names)
    assert all(c.path.is_file() and c.path.parent.parent == box.films for c in claimed)
    assert (box.root / "notes.txt").exists() and (box.root / ".partial.mp4").exists()
    assert (box.root / "link.mp4").is_symlink() and (outside / "secret.mp4").exists()


def test_unreadable_films_go_to_failed_with_a_reason(inbox, film: Path) -> None:
    box, claimed = inbox
    (box.root / "sub").mkdir()
    (box.root / "sub" / "empty.mkv").write_bytes(b"")
    (box.root / "notes.mp4").write_text("shopping list\n" * 50)
    (box.root / "cut.mp4").write_bytes(film.read_bytes()[: film.stat().st_size // 3])
    (box.root / "empty.mkv").write_bytes(b"")
    box.tick(now=0.0)
    box.tick(now=10.0)
    assert not claimed
    failed = box.root / "failed"
    reasons = {p.name: p.read_text() for p in failed.rglob("*.reason.txt")}
    assert "empty file" in reasons["empty.mkv.reason.txt"]
    assert "not a readable video" in reasons["notes.mp4.reason.txt"]
    assert "cut.mp4" in reasons["cut.mp4.reason.txt"]
    assert (failed / "sub" / "empty.mkv").exists()
    assert (failed / "notes.mp4").read_text().startswith("shopping list")  # preserved
    (box.root / "notes.mp4").write_text("another list\n")  # another file, same name: beside it
    (box.root / "empty.mkv").write_bytes(b"")  # the same file again: nothing new, replaces it
    box.tick(now=20.0)
    box.tick(now=30.0)
    assert (failed / "notes (2).mp4").read_text() == "another list\n"
    assert (failed / "notes (2).mp4.reason.txt").exists() and (failed / "notes.mp4").exists()
    assert (failed / "empty.mkv").exists() and not (failed / "empty (2).mkv").exists()


def test_a_film_already_in_the_workspace_is_rejected(inbox, film: Path) -> None:
    box, claimed = inbox
    box.is_known = lambda digest: "films/x, film 1"
    (box.root / "again.mp4").write_bytes(film.read_bytes())
    box.tick(now=0.0)
    box.tick(now=10.0)
    assert not claimed
    assert "already in the workspace" in (box.root / "failed" / "again.mp4.reason.txt").read_text()
