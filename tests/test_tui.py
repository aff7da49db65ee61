"""The review app driven by keys (Pilot), its screens as text snapshots, and a real run in tmux."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from textual import events
from textual.pilot import Pilot

from reelface import catalogue, jobs, workspace
from reelface.cli import main
from reelface.identity import decisions, identify
from reelface.tui.app import ReelfaceApp
from reelface.tui.screens.dashboard import Dashboard
from reelface.tui.screens.detail import FaceDetail
from reelface.tui.screens.help import HelpScreen
from reelface.tui.screens.identities import IdentitiesScreen
from reelface.tui.screens.review import ReviewScreen
from tests.conftest import CROP

SIZE = (120, 40)
SNAPSHOTS = Path(__file__).parent / "snapshots"


def cli(root: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["-w", str(root), *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def template(film: Path, tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """A workspace made by the real pipeline: extract then cluster the synthesised film."""
    root = tmp_path_factory.mktemp("tui") / "ws"
    cli(root, "extract", str(film), "--size", str(CROP), "--json")
    cli(root, "cluster", "--all")
    return root


@pytest.fixture
def root(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(template, copy)
    return copy


def largest_identity(app: ReelfaceApp) -> int:
    return max(identify.identities(app.conn), key=lambda i: (i.faces, -i.id)).id


async def idle(app: ReelfaceApp, pilot: Pilot, seconds: float = 30.0) -> None:
    """Wait until the workers are done and what they handed back is applied (which may start more
    work, or replay the keys held meanwhile)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(getattr(screen, "working", lambda: False)() for screen in app.screen_stack):
            return
    raise AssertionError("the app kept working")


def run(root: Path, script, size: tuple[int, int] = SIZE) -> None:
    """Run the app headless (120×40) and hand the pilot to an async script once it has loaded."""

    async def main_() -> None:
        app = ReelfaceApp(workspace.Workspace(root))
        async with app.run_test(size=size) as pilot:
            await idle(app, pilot)
            await script(app, pilot)

    asyncio.run(main_())


async def press(app: ReelfaceApp, pilot: Pilot, *keys: str) -> None:
    """Press keys, then wait for the work they started (catalogue reads run in workers)."""
    await pilot.press(*keys)
    await idle(app, pilot)


async def open_review(app: ReelfaceApp, pilot) -> ReviewScreen:
    await press(app, pilot, "i")
    table = app.screen.query_one("DataTable")
    ids = [info.id for info in app.screen.infos]
    table.move_cursor(row=ids.index(largest_identity(app)))
    await press(app, pilot, "enter")
    assert isinstance(app.screen, ReviewScreen)
    return app.screen


def screen_text(app: ReelfaceApp) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip).rstrip() for strip in strips)


def verdicts(app: ReelfaceApp) -> dict[int, str]:
    return decisions.state(app.conn).verdict


def test_dashboard_lists_the_film_and_opens_identities(root: Path) -> None:
    async def script(app, pilot) -> None:
        assert isinstance(app.screen, Dashboard)
        assert "done" in screen_text(app) and "daemon: down" in screen_text(app)
        await press(app, pilot, "i")
        assert isinstance(app.screen, IdentitiesScreen)
        assert len(app.screen.infos) >= 3

    run(root, script)


def test_keep_discard_undo_redo_and_the_cursor_advances(root: Path) -> None:
    async def script(app, pilot) -> None:
        review = (await open_review(app, pilot)).review
        first, second = review.visible[0].id, review.visible[1].id
        await pilot.press("k")
        assert review.cursor == 1 and verdicts(app)[first] == "keep"
        await pilot.press("d")
        assert review.cursor == 2 and verdicts(app)[second] == "discard"
        await press(app, pilot, "u")
        assert second not in verdicts(app)
        await press(app, pilot, "U")
        assert verdicts(app)[second] == "discard"
        await pilot.press("left", "left", "right")
        assert review.cursor == 1

    run(root, script)


def test_a_burst_of_keys_applies_to_successive_faces(root: Path) -> None:
    """Keys typed faster than the screen redraws still land on one face each, in order."""

    async def script(app, pilot) -> None:
        screen = await open_review(app, pilot)
        await press(app, pilot, "G")  # every face shown: duplicates too
        start = screen.review.cursor  # still on the face it was on, wherever that now sits
        ids = [face.id for face in screen.review.visible[start : start + 5]]
        assert len(ids) == 5
        for key in "kkdkd":
            app.post_message(events.Key(key, key))
        await pilot.pause()
        await pilot.pause()
        got = verdicts(app)
        assert [got.get(i) for i in ids] == ["keep", "keep", "discard", "keep", "discard"]
        assert screen.review.cursor == start + 5

    run(root, script)


def test_selection_reassign_split_and_merge_with_undo(root: Path) -> None:
    async def script(app, pilot) -> None:
        screen = await open_review(app, pilot)
        review = screen.review
        identity = review.identity
        other = next(i.id for i in identify.identities(app.conn) if i.id != identity)
        picked = [review.visible[0].id, review.visible[1].id]
        await pilot.press("space", "right", "space")
        assert review.selected == set(picked)
        await pilot.press("r", *str(other), "enter")  # the id typed while the choices load
        await idle(app, pilot)
        view = decisions.view(app.conn)
        assert [view[f].identity for f in picked] == [other, other]
        moved = review.current.id
        await press(app, pilot, "s")
        assert decisions.view(app.conn)[moved].identity not in (identity, other)
        await press(app, pilot, "m")
        await press(app, pilot, *str(other), "enter")
        assert decisions.state(app.conn).resolve(identity) == other
        assert review.identity == other  # the review follows the faces
        await press(app, pilot, "u")  # a mistaken merge, undone
        assert decisions.state(app.conn).resolve(identity) == identity
        assert review.identity == identity  # and the review is back where it was

    run(root, script)


def test_filter_by_reason_and_discard_all_flagged_with_confirmation(root: Path) -> None:
    async def script(app, pilot) -> None:
        screen = await open_review(app, pilot)
        review = screen.review
        reasons = {k for face in review.faces for k in face.keys if k != "profile"}
        assert reasons, "the test film should give this identity flagged faces"
        reason = sorted(reasons)[0]
        while review.filter != reason:
            await pilot.press("f")
        flagged = review.flagged(reason)
        assert {f.id for f in review.visible} == set(flagged)
        await pilot.press("X")
        await pilot.pause()
        await pilot.press("n")  # declined: nothing happens
        assert not any(verdicts(app).get(f) == "discard" for f in flagged)
        await pilot.press("X")
        await pilot.pause()
        await press(app, pilot, "y")
        assert all(verdicts(app)[f] == "discard" for f in flagged)
        sorts = []
        for _ in range(3):
            await pilot.press("o")
            sorts.append(review.sort)
        assert sorted(sorts) == ["outliers", "quality", "time"]

    run(root, script)


def test_detail_help_rename_and_launch_forms(root: Path) -> None:
    async def script(app, pilot) -> None:
        screen = await open_review(app, pilot)
        face = screen.review.current
        await press(app, pilot, "enter")
        assert isinstance(app.screen, FaceDetail) and app.screen.face.id == face.id
        assert "reasons:" in screen_text(app)
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.query_one("DataTable").row_count > 20
        await press(app, pilot, "escape", "escape")
        assert isinstance(app.screen, IdentitiesScreen)
        identity = app.screen.current.id
        await pilot.press("n")
        await pilot.pause()
        await press(app, pilot, *"Actor A", "enter")
        assert decisions.state(app.conn).names[identity] == "Actor A"
        await pilot.press("escape", "e")
        await pilot.pause()
        await press(app, pilot, *"/tmp/out", "enter", *"yes", "enter", "enter")
        [job] = jobs.listing(app.conn)
        assert job.kind == "export" and job.params == {"out": "/tmp/out", "reviewed_only": True}

    run(root, script)


def masked(text: str, root: Path) -> str:
    """Screen text with what differs between machines replaced: the workspace, the GPU line."""
    text = text.replace(str(root), "<workspace>")
    return re.sub(r"GPU: .*$", "GPU: <gpu>", text, flags=re.MULTILINE)


@pytest.mark.parametrize("name", ["dashboard", "identities", "review"])
def test_screen_snapshots(seeded: Path, name: str) -> None:
    """Each main screen at 120×40 as text; REELFACE_UPDATE_SNAPSHOTS=1 (re)writes the files."""

    async def script(app, pilot) -> None:
        if name == "identities":
            await press(app, pilot, "i")
        elif name == "review":
            await open_review(app, pilot)
        path = SNAPSHOTS / f"{name}.txt"
        if os.environ.get("REELFACE_UPDATE_SNAPSHOTS") == "1":
            await pilot.pause(0.5)
            path.parent.mkdir(exist_ok=True)
            path.write_text(masked(screen_text(app), seeded))
        if not path.exists():
            pytest.fail(f"no snapshot {path}: run with REELFACE_UPDATE_SNAPSHOTS=1 to write it")
        # A table filled by a worker's result sizes its columns on a later idle pass: the
        # screen must come to the snapshot within a second, not in the first frame.
        expected, deadline = path.read_text(), time.monotonic() + 1.0
        text = masked(screen_text(app), seeded)
        while text != expected and time.monotonic() < deadline:
            await pilot.pause(0.05)
            text = masked(screen_text(app), seeded)
        assert text == expected

    run(seeded, script)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_app_in_tmux(seeded: Path) -> None:
    """A real terminal: start the app in a 120×40 tmux pane, review by keys, quit."""
    socket = f"reelface-test-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", socket]
    command = f"{sys.executable} -m reelface tui {seeded}"
    env = {**os.environ, "TERM": "xterm-256color"}
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "120", "-y", "40", command], check=True, env=env
    )

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout

    def wait_for(text: str) -> str:
        deadline = time.time() + 30
        while time.time() < deadline:
            shown = screen()
            if text in shown:
                return shown
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared:\n{screen()}")

    def press(key: str) -> None:
        subprocess.run([*tmux, "send-keys", key], check=True)

    try:
        wait_for("daemon: down")
        press("i")
        wait_for("6 identities")
        press("Enter")
        # Only the review's status line says this (the identities table has an "unreviewed"
        # column too, which is how keys once reached that screen before the review existed).
        shown = wait_for("identity 1 1/9 │ ✔0 ✘0 ·9")
        assert "▀" in shown  # the faces are drawn in half blocks
        for key, status, marks in (
            ("k", "identity 1 2/9 │ ✔1 ✘0 ·8", "✔"),
            ("k", "identity 1 3/9 │ ✔2 ✘0 ·7", "✔✔"),
            ("d", "identity 1 4/9 │ ✔2 ✘1 ·6", "✔✔✘"),
        ):
            press(key)
            shown = wait_for(status)  # the decision counted, the cursor moved on
            tiles = shown.split("\n", 1)[1]  # below the status line, which counts them too
            assert "".join(c for c in tiles if c in "✔✘") == marks  # and its tile is marked
        press("q")
        time.sleep(1)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    ws = workspace.Workspace(seeded)
    from reelface import catalogue

    conn = catalogue.open_catalogue(ws.catalogue_path)
    got = sorted(decisions.state(conn).verdict.values())
    conn.close()
    assert got == ["discard", "keep", "keep"]


async def settle(
    app: ReelfaceApp, pilot: Pilot, done: Callable[[], bool], seconds: float = 10.0
) -> None:
    """Let the app work (screens, loaders, replayed keys) until `done()` or a deadline."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        await pilot.pause(0.02)
    await app.workers.wait_for_complete()
    await pilot.pause()


def test_keys_typed_while_the_review_opens_land_on_the_review(seeded: Path) -> None:
    """Enter then decision keys at once, as a fast typist does: the review gets every one."""

    async def script(app, pilot) -> None:
        await press(app, pilot, "i")
        identities = app.screen
        assert isinstance(identities, IdentitiesScreen)
        info = identities.current
        # On the identities screen x rejects the suggested link, d and k do nothing.
        assert info is not None and info.suggestions
        keys = [("enter", "\r"), ("k", "k"), ("k", "k"), ("d", "d"), ("x", "x"), ("k", "k")]
        for key, character in keys:  # all queued before the app handles the first
            app.post_message(events.Key(key, character))
        await settle(app, pilot, lambda: len(verdicts(app)) == 5)
        review = app.screen
        assert isinstance(review, ReviewScreen) and review.review.identity == info.id
        faces = [face.id for face in review.review.visible[:5]]
        got = verdicts(app)
        assert [got.get(face) for face in faces] == ["keep", "keep", "discard", "discard", "keep"]
        assert review.review.cursor == 5
        assert not decisions.state(app.conn).rejected  # nothing reached the identities screen
        assert [d.kind for d in decisions.history(app.conn)] == ["keep"] * 2 + ["discard"] * 2 + [
            "keep"
        ]

    run(seeded, script)


def test_the_identity_picker_puts_an_exact_id_first(root: Path) -> None:
    """Typing "4" picks identity 4, not the first label with a 4 somewhere in it."""
    from reelface.tui.screens.pickers import Choice, IdentityPicker

    async def script(app, pilot) -> None:
        picked = []
        choices = [Choice(2, "2 (9 faces, film-1364)"), Choice(4, "4 (6 faces, film-2)")]
        app.push_screen(IdentityPicker("Merge into…", choices, allow_new=False), picked.append)
        await pilot.pause()
        await pilot.press("4", "enter")
        await pilot.pause()
        assert picked == [4]

    run(root, script)


def test_dashboard_keys_drive_jobs_forms_and_the_daemon(root: Path) -> None:
    async def script(app, pilot) -> None:
        first = jobs.enqueue(app.conn, "export", {"out": "/tmp/nowhere-a"})
        jobs.enqueue(app.conn, "export", {"out": "/tmp/nowhere-b"})
        app.screen.refresh_tables()
        await idle(app, pilot)
        table = app.screen.query_one("#jobs")
        table.focus()
        table.move_cursor(row=1)  # newest first: row 1 is the first job
        await press(app, pilot, "c")
        assert jobs.get(app.conn, first).state == "cancelled"
        await press(app, pilot, "r")
        assert jobs.get(app.conn, first).state == "queued"
        await press(app, pilot, "l")
        assert f"job {first}" in screen_text(app)
        await pilot.press("escape", "t")
        await pilot.pause()
        for text in ("/data/train", "/tmp/run", "100", "8"):
            await pilot.press(*text, "enter")
            await pilot.pause()
        await pilot.press("v")
        await pilot.pause()
        for text in ("g.pt", "/data/testset", "arcface.tar", "/tmp/report"):
            await pilot.press(*text, "enter")
            await pilot.pause()
        await idle(app, pilot)
        queued = {job.kind: job.params for job in jobs.listing(app.conn)}
        assert queued["train"] == {"data": ["/data/train"], "out": "/tmp/run", "steps": 100,
                                   "batch": 8}  # fmt: skip
        assert queued["evaluate"]["testset"] == "/data/testset"
        await press(app, pilot, "s")  # a real daemon, detached
        assert "daemon: up" in screen_text(app)
        await press(app, pilot, "S")
        assert "daemon: down" in screen_text(app)

    run(root, script)


def test_identity_keys_merge_undo_and_cross_film_links(root: Path, tmp_path: Path) -> None:
    """A second film of the same people: its identities are suggested as links to accept."""
    from reelface import synth
    from reelface.synth import demo

    second = tmp_path / "second.mp4"
    synth.make_film(second, demo.scenario(960, 540, eye=80, frames=20)[:4], size=(960, 540))
    cli(root, "extract", str(second), "--size", str(CROP), "--json")
    cli(root, "cluster", "--all")

    async def script(app, pilot) -> None:
        await press(app, pilot, "I")
        screen = app.screen
        linked = next(i for i in screen.infos if i.suggestions)
        other = linked.suggestions[0][0]
        ids = [info.id for info in screen.infos]
        screen.query_one("DataTable").move_cursor(row=ids.index(linked.id))
        await press(app, pilot, "x")  # not the same person after all
        assert (linked.id, other) in decisions.state(app.conn).rejected
        await press(app, pilot, "u")
        screen.query_one("DataTable").move_cursor(row=[i.id for i in screen.infos].index(linked.id))
        await press(app, pilot, "a")  # accepted: one identity now
        assert decisions.state(app.conn).resolve(linked.id) == other
        await press(app, pilot, "u", "g")
        assert decisions.state(app.conn).resolve(linked.id) == linked.id
        target = next(i.id for i in screen.infos if i.id != linked.id)
        screen.query_one("DataTable").move_cursor(row=[i.id for i in screen.infos].index(linked.id))
        await pilot.press("m")
        await pilot.pause()
        await press(app, pilot, *str(target), "enter")
        assert decisions.state(app.conn).resolve(linked.id) == target
        await pilot.press("D")
        assert isinstance(app.screen, Dashboard)
        await pilot.press("q")

    run(root, script)


def test_pages_turn_in_a_small_terminal(root: Path) -> None:
    async def script(app, pilot) -> None:
        screen = await open_review(app, pilot)
        await press(app, pilot, "G")
        await pilot.press(*["left"] * screen.review.cursor)  # G keeps the cursor's face
        size = screen.page_size
        assert size < len(screen.review.visible)
        await pilot.press("pagedown")
        assert screen.review.cursor == size and screen.first == size
        await pilot.press("pageup", "down")
        assert screen.review.cursor == screen.columns

    run(root, script, size=(40, 24))


def test_catalogue_reads_and_the_daemon_stay_off_the_ui_thread(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SQL statement of the dashboard, identities, review and detail, and the daemon
    commands, run in workers: the UI thread keeps drawing and taking keys meanwhile."""
    statements: list[tuple[str, bool]] = []  # (SQL, on the UI thread)
    open_catalogue = catalogue.open_catalogue

    def traced(path: Path):
        conn = open_catalogue(path)
        conn.set_trace_callback(
            lambda sql: statements.append(
                (sql, threading.current_thread() is threading.main_thread())
            )
        )
        return conn

    monkeypatch.setattr(catalogue, "open_catalogue", traced)
    daemon_runs: list[tuple[str, bool]] = []
    answer = threading.Event()
    real_run = subprocess.run

    def daemon_command(command, **kwargs):
        if "daemon" not in command:
            return real_run(command, **kwargs)
        verb = command[-1]
        daemon_runs.append((verb, threading.current_thread() is threading.main_thread()))
        answer.wait(10)  # a slow daemon: the UI must not wait for it
        return subprocess.CompletedProcess(command, 0, f"daemon {verb}: done\n", "")

    monkeypatch.setattr(subprocess, "run", daemon_command)

    async def script(app, pilot) -> None:
        app.screen.tick()  # what the two-second timer does
        await idle(app, pilot)
        await pilot.press("s")
        await pilot.pause()
        assert "daemon start…" in screen_text(app)  # drawn while the command runs
        answer.set()
        await idle(app, pilot)
        assert "daemon start: done" in screen_text(app)
        await press(app, pilot, "S")
        assert "daemon stop: done" in screen_text(app)
        await press(app, pilot, "i")  # identities read on opening…
        await press(app, pilot, "enter")  # …the review's faces…
        await press(app, pilot, "s", "u")  # …a split and its undo, read again…
        await press(app, pilot, "r")  # …the choices of identities to move a face to…
        await press(app, pilot, "escape", "enter")  # …the detail's source frame…
        await press(app, pilot, "escape", "escape")  # …and identities again on returning.
        assert isinstance(app.screen, IdentitiesScreen) and app.screen.infos

    run(seeded, script)
    assert daemon_runs == [("start", False), ("stop", False)]
    assert statements and not [sql for sql, on_ui in statements if on_ui]
