"""A real Ray cluster as a user starts one (`ray start --head`, a second node joining it): the
daemon commits every row itself, the workers' segments merge into one run's rows and files, and
a worker killed with -9 mid-film has its segment run again."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelface import synth
from reelface.synth import demo
from tests.test_daemon import Daemons, all_done, copy_into, make_ws, query, snapshot, wait_for

pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'reelface[ray]'")
RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A head node and a second node on this machine, one CPU each, stopped afterwards."""
    if RAY is None:
        pytest.skip("the `ray` command is not installed")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Ray's token authentication, as a real cluster has it: every node and the daemon share
    # the token (the daemon inherits it through this process's environment).
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in token}
    os.environ.update(token)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([RAY, "start", "--head", "--port", str(port), "--include-dashboard=false",
                    *common], env=env, check=True, capture_output=True)  # fmt: skip
    try:
        subprocess.run([RAY, "start", "--address", address, *common], env=env, check=True,
                       capture_output=True)  # fmt: skip
        yield address
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture(scope="module")
def long_film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray-film") / "long film.mkv"
    synth.make_film(path, demo.scenario(640, 360, eye=60, frames=60), size=(640, 360), gop=25)
    return path


def _run(root: Path, film: Path, address: str, kill: bool = False) -> tuple[float, list[int]]:
    """The film through `daemon run --ray ADDRESS`; seconds to done and the pids killed."""
    with open(root / "reelface.toml", "a") as handle:
        # Into the [daemon] section make_ws wrote last: two workers, segments of 8 samples.
        handle.write("ray_workers = 2\nsegment_samples = 8\n")
    keeper = Daemons()
    killed: list[int] = []
    try:
        proc = keeper.start(root, "--ray", address)
        log = root / "logs" / "daemon.log"
        wait_for(lambda: log.exists() and "worker 2:" in log.read_text(), 120, proc)
        status = subprocess.run(
            [sys.executable, "-m", "reelface", "-w", str(root), "daemon", "status"],
            capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        assert "Ray worker 1:" in status.stdout and "Ray worker 2:" in status.stdout, status
        started = time.monotonic()
        copy_into(root / "inbox", film)
        if kill:
            committed = "SELECT MAX(last_frame) FROM films"
            wait_for(lambda: (query(root, committed) or [[None]])[0][0] is not None, 120, proc)
            pids = [int(p) for p in re.findall(r"worker \d+: \S+ pid (\d+)", log.read_text())]
            os.kill(pids[-1], signal.SIGKILL)  # a worker, mid-film: not the daemon
            killed.append(pids[-1])
        wait_for(lambda: all_done(root, 1), 240, proc)
        seconds = time.monotonic() - started
        assert keeper.stop(proc) == 0
    finally:
        keeper.kill_all()
    return seconds, killed


def test_segments_on_two_nodes_merge_into_one_run(
    cluster: str, long_film: Path, tmp_path: Path, models_dir: Path
) -> None:
    alone = make_ws(tmp_path / "alone")
    keeper = Daemons()
    try:
        proc = keeper.start(alone)
        copy_into(alone / "inbox", long_film)
        wait_for(lambda: all_done(alone, 1), 240, proc)
        assert keeper.stop(proc) == 0
    finally:
        keeper.kill_all()
    reference = snapshot(alone)

    root = make_ws(tmp_path / "ray")
    _, killed = _run(root, long_film, cluster, kill=True)
    assert killed
    assert snapshot(root) == reference
    text = "\n".join(p.read_text() for p in (root / "logs").rglob("*.log"))
    assert "2 CPU worker(s)" in text and "segment(s) on the Ray cluster" in text
    assert "a Ray worker died" in text
