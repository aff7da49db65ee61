"""The daemon as a user runs it: real processes, real files, kill -9, slow copies, a full disk."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reelface import synth, workspace
from reelface.synth import demo

DAEMON_TOML = """
[daemon]
stable_seconds = 1.0
close_settle_seconds = 0.5
poll_seconds = 0.1
scan_seconds = 1.0
cluster_after_extract = {cluster}
"""


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A longer film (many commit points to kill at) and a short one: 640×360, two formats."""
    folder = tmp_path_factory.mktemp("daemon-films")
    out = {"long": folder / "long film.mkv", "short": folder / "short.mp4"}
    synth.make_film(out["long"], demo.scenario(640, 360, eye=60, frames=60), size=(640, 360))
    synth.make_film(out["short"], demo.scenario(640, 360, eye=60, frames=20), size=(640, 360))
    return out


def make_ws(root: Path, cluster: bool = False) -> Path:
    """A workspace extracting 128 px crops in batches of 2 frames (many resume points)."""
    ws = workspace.init(root)
    text = ws.config_path.read_text().replace("size = 1024", "size = 128")
    text = text.replace("batch = 8", "batch = 2")
    ws.config_path.write_text(text + DAEMON_TOML.format(cluster=str(cluster).lower()))
    return ws.root


class Daemons:
    """Starts `reelface daemon run` processes and guarantees none outlives the test."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, root: Path, *args: str) -> subprocess.Popen:
        log = open(root / "logs" / "test-daemon.out", "ab")  # noqa: SIM115 (closed with proc)
        proc = subprocess.Popen(
            [sys.executable, "-m", "reelface", "-w", str(root), "daemon", "run", "--quiet", *args],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 60) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    keeper = Daemons()
    yield keeper
    keeper.kill_all()


def query(root: Path, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(root / "catalogue.sqlite", timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def wait_for(
    check: Callable[[], object], timeout: float, proc: subprocess.Popen | None = None
) -> object:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the daemon exited ({proc.returncode}) while waiting")
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {check}")


def job_states(root: Path, kind: str = "extract") -> list[tuple]:
    return query(root, "SELECT state, error FROM jobs WHERE kind = ? ORDER BY id", kind)


def all_done(root: Path, count: int) -> bool:
    states = job_states(root)
    return len(states) == count and all(s == "done" for s, _ in states)


def snapshot(root: Path) -> tuple[list[tuple], dict[str, str]]:
    """Every face row (no ids or times) and every crop file's hash; orphans and .part checked."""
    rows = query(
        root,
        "SELECT f.slug, x.frame, x.slot, x.pts, x.box, x.landmarks, x.matrix, x.crop_path, "
        "x.measures, x.reasons, x.passed, x.embedding FROM faces x JOIN films f "
        "ON f.id = x.film_id ORDER BY f.slug, x.frame, x.slot",
    )
    files = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "films").rglob("*.png"))
    }
    assert sorted(files) == sorted(r[7] for r in rows), "orphan crops or crops missing"
    assert len({(r[0], r[1], r[2]) for r in rows}) == len(rows), "a face written twice"
    assert not list((root / "films").rglob("*.part"))
    return rows, files


def copy_into(inbox: Path, film: Path, name: str | None = None) -> Path:
    """Copy in one go, as `cp` does: a temp name outside the watch, then a rename."""
    target = inbox / (name or film.name)
    tmp = inbox.parent / f".{target.name}.copy"
    tmp.write_bytes(film.read_bytes())
    os.replace(tmp, target)
    return target


@pytest.fixture(scope="module")
def reference(films, tmp_path_factory, models_dir) -> tuple[list[tuple], dict[str, str]]:
    """Both films through an uninterrupted daemon run."""
    root = make_ws(tmp_path_factory.mktemp("reference") / "ws")
    keeper = Daemons()
    try:
        proc = keeper.start(root)
        for film in films.values():
            copy_into(root / "inbox", film)
        wait_for(lambda: all_done(root, 2), 120, proc)
        assert keeper.stop(proc) == 0
    finally:
        keeper.kill_all()
    return snapshot(root)


def test_kill9_at_several_points_then_finish_equals_uninterrupted(
    films, reference, daemons, tmp_path: Path
) -> None:
    root = make_ws(tmp_path / "ws")
    for film in films.values():
        copy_into(root / "inbox", film)
    total = 420  # frames of the long film; batches of 2 sampled frames commit every 20
    kills = []
    # Early, middle, late; the last leaves 40 % of the film (~0.3 s here) to kill it in.
    for fraction in (0.1, 0.35, 0.6):
        proc = daemons.start(root)

        def reached(fraction=fraction):
            rows = query(root, "SELECT MAX(last_frame) FROM films WHERE slug LIKE 'long-film%'")
            return rows and rows[0][0] is not None and rows[0][0] >= fraction * total

        wait_for(reached, 60, proc)
        proc.kill()
        proc.wait()
        kills.append(query(root, "SELECT COUNT(*) FROM faces")[0][0])
        assert query(root, "SELECT COUNT(*) FROM jobs WHERE state = 'running'")[0][0] >= 1
        said = subprocess.run(
            [sys.executable, "-m", "reelface", "-w", str(root), "daemon", "status"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        resumes = (
            "(extract long film.mkv) was running when the daemon stopped; "
            "it resumes at the next `reelface daemon start`"
        )
        assert resumes in said.stdout, said.stdout + said.stderr
    proc = daemons.start(root)
    wait_for(lambda: all_done(root, 2), 120, proc)
    assert daemons.stop(proc) == 0
    assert kills == sorted(kills) and 0 < kills[0] < len(reference[0])
    assert snapshot(root) == reference
    attempts = query(root, "SELECT attempts FROM jobs WHERE params LIKE '%long-film%'")[0][0]
    assert attempts == 4  # three killed attempts, resumed each time, and the one that finished
    log = (root / "logs" / "daemon.log").read_text()
    assert log.count("was interrupted: queued again") >= 3


def test_slow_copy_bad_files_and_the_next_film(films, daemons, tmp_path: Path) -> None:
    root = make_ws(tmp_path / "ws", cluster=True)
    inbox = root / "inbox"
    (inbox / "zero.mp4").write_bytes(b"")
    (inbox / "notes.mp4").write_text("shopping list\n" * 100)
    short = films["short"].read_bytes()
    (inbox / "cut.mp4").write_bytes(short[: len(short) * 2 // 5])
    long = films["long"].read_bytes()
    (inbox / "codec.mkv").write_bytes(long.replace(b"V_MPEG4/ISO/AVC", b"V_QUUX0/ISO/ZZZ", 1))
    (inbox / "half.mkv").write_bytes(long[: len(long) // 2])  # probes fine, decoding stops
    (inbox / "readme.txt").write_text("not a film")
    proc = daemons.start(root)
    # The slow copy: eight chunks 0.4 s apart, longer than the 1 s stability wait in all.
    slow = inbox / "slow copy é.mp4"
    with open(slow, "wb") as handle:
        for step in range(8):
            handle.write(short[step * len(short) // 8 : (step + 1) * len(short) // 8])
            handle.flush()
            time.sleep(0.4)
            assert slow.exists(), f"claimed during the copy, after chunk {step}"
            assert not query(root, "SELECT id FROM jobs WHERE params LIKE '%slow-copy%'")
    wait_for(lambda: query(root, "SELECT state FROM jobs WHERE params LIKE '%slow-copy%' "
                                 "AND kind = 'extract' AND state = 'done'"), 60, proc)  # fmt: skip
    wait_for(lambda: len(job_states(root)) == 2 and all(s != "running" for s, _ in
                                                       job_states(root)), 60, proc)  # fmt: skip
    assert proc.poll() is None, "the daemon died"
    failed = inbox / "failed"
    reasons = {p.name.removesuffix(".reason.txt"): p.read_text() for p in failed.glob("*.txt")}
    assert sorted(reasons) == ["codec.mkv", "cut.mp4", "notes.mp4", "zero.mp4"]
    assert "empty file" in reasons["zero.mp4"]
    assert "not a readable video" in reasons["notes.mp4"]
    assert "unsupported video codec" in reasons["codec.mkv"]
    assert (failed / "notes.mp4").read_text().startswith("shopping list")
    assert (inbox / "readme.txt").exists()
    states = dict(query(root, "SELECT json_extract(params, '$.source'), state FROM jobs "
                              "WHERE kind = 'extract'"))  # fmt: skip
    assert states == {"slow copy é.mp4": "done", "half.mkv": "failed"}
    [(error,)] = query(root, "SELECT error FROM jobs WHERE params LIKE '%half.mkv%'")
    assert "truncated" in error
    slug = query(root, "SELECT slug FROM films WHERE state = 'done'")[0][0]
    assert (root / "films" / slug / "slow copy é.mp4").read_bytes() == short
    # One clustering job per claimed film, each after its extraction: the good film's runs and
    # finds its people, the failed film's is cancelled with it.
    wait_for(lambda: all(s not in ("queued", "running") for s, _ in job_states(root, "cluster")),
             60, proc)  # fmt: skip
    clusters = sorted(state for state, _ in job_states(root, "cluster"))
    assert clusters == ["cancelled", "done"]
    assert query(root, "SELECT COUNT(*) FROM identities")[0][0] >= 2
    listing = subprocess.run(
        [sys.executable, "-m", "reelface", "-w", str(root), "jobs", "list"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert listing.returncode == 0 and "truncated" in listing.stdout, listing.stderr
    assert daemons.stop(proc) == 0


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from reelface import catalogue
    conn = catalogue.open_catalogue(Path(sys.argv[1]))
    conn.execute("CREATE TABLE IF NOT EXISTS stress (id INTEGER PRIMARY KEY, face INT, v TEXT)")
    end, count = time.time() + float(sys.argv[2]), 0
    while time.time() < end:
        with catalogue.transaction(conn):
            conn.execute("INSERT INTO stress (face, v) VALUES (?, 'keep')", (count,))
            conn.execute("SELECT COUNT(*) FROM faces").fetchone()
        count += 1
        time.sleep(0.002)
    print(count)
    """
)


def test_concurrent_writes_from_another_process_never_lock(films, daemons, tmp_path) -> None:
    root = make_ws(tmp_path / "ws")
    proc = daemons.start(root)
    copy_into(root / "inbox", films["long"])
    wait_for(lambda: query(root, "SELECT id FROM jobs WHERE state = 'running'"), 30, proc)
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, str(root / "catalogue.sqlite"), "4"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert writer.returncode == 0, writer.stderr
    assert int(writer.stdout) > 200  # sustained: hundreds of write transactions
    wait_for(lambda: all_done(root, 1), 120, proc)
    assert daemons.stop(proc) == 0
    assert "locked" not in (root / "logs" / "daemon.log").read_text()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        # The long film (1 MB) and the catalogue fit, about half of its 1.7 MB of crops do not.
        ["mount", "-t", "tmpfs", "-o", "size=2400k", "tmpfs", str(mount)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


def test_disk_full_fails_cleanly_and_resumes_after_space_is_freed(
    films, reference, daemons, small_disk: Path
) -> None:
    root = make_ws(small_disk / "ws")
    proc = daemons.start(root)
    copy_into(root / "inbox", films["long"])

    def failed() -> bool:
        return bool(job_states(root)) and job_states(root)[0][0] == "failed"

    deadline = time.time() + 8  # the disk may be too full even to record the failure:
    while not failed() and time.time() < deadline:  # then it is, once space is freed
        time.sleep(0.1)
    assert not list(root.rglob("*.part")), "a half-written file was left behind"
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    wait_for(failed, 30, proc)
    [(state, error)] = job_states(root)
    assert "disk full" in error and "free space" in error
    assert proc.poll() is None, "the daemon died"
    retry = subprocess.run(
        [sys.executable, "-m", "reelface", "-w", str(root), "jobs", "retry", "1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert retry.returncode == 0, retry.stderr
    wait_for(lambda: all_done(root, 1), 60, proc)
    assert daemons.stop(proc) == 0
    rows, files = snapshot(root)
    assert rows == [r for r in reference[0] if r[0].startswith("long-film")]
    assert files == {k: v for k, v in reference[1].items() if "/long-film-" in k}


def test_start_status_stop_detached(daemons, tmp_path: Path, models_dir) -> None:
    root = make_ws(tmp_path / "ws")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "reelface", "-w", str(root), "daemon", *args],
            capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120,
        )  # fmt: skip

    started = cli("start")
    assert started.returncode == 0, started.stderr
    pid = int(started.stdout.split("pid ")[1].split(",")[0])
    try:
        assert f"running (pid {pid})" in cli("status").stdout
        again = daemons.start(root)  # a second daemon for the same workspace is refused
        assert again.wait(60) == 2
        assert "already runs" in (root / "logs" / "test-daemon.out").read_text()
        assert cli("start").returncode == 2
        stopped = cli("stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
        assert "not running" in cli("status").stdout
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_extraction_as_ray_tasks(films, reference, daemons, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'reelface[ray]'")
    root = make_ws(tmp_path / "ws")
    proc = daemons.start(root, "--ray", "local")
    copy_into(root / "inbox", films["short"])
    wait_for(lambda: all_done(root, 1), 180, proc)
    assert daemons.stop(proc) == 0
    rows, files = snapshot(root)
    assert rows == [r for r in reference[0] if r[0].startswith("short")]
    assert "Ray" in (root / "logs" / "daemon.log").read_text()
