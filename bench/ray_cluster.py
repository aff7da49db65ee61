"""One film through the daemon on a local Ray cluster with 1 and with 2 workers, side by side.

Starts the cluster as a user does (`ray start --head`, then a second node joining it, CPU only),
runs `reelface daemon run --ray ADDRESS` on a fresh workspace per run, and prints the wall time
from the film's drop to its extraction job's end, the ratio, and whether both runs wrote the
same rows and files as the daemon without Ray. On 2 cores the two workers share them with the
daemon; the ratio says what segmenting costs or gains on this machine.

    python bench/ray_cluster.py [--frames-per-shot 120]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reelface import synth  # noqa: E402
from reelface.synth import demo  # noqa: E402
from tests.test_daemon import Daemons, all_done, copy_into, make_ws, snapshot, wait_for  # noqa: E402
from tests.test_ray_cluster import RAY, _free_port  # noqa: E402


def run(root: Path, film: Path, address: str | None, workers: int) -> float:
    if address:
        with open(root / "reelface.toml", "a") as handle:
            handle.write(f"ray_workers = {workers}\nsegment_samples = 16\n")
    keeper = Daemons()
    try:
        proc = keeper.start(root, *(["--ray", address] if address else []))
        log = root / "logs" / "daemon.log"
        ready = f"worker {workers}:" if address else "daemon"
        wait_for(lambda: log.exists() and ready in log.read_text(), 180, proc)
        started = time.monotonic()
        copy_into(root / "inbox", film)
        wait_for(lambda: all_done(root, 1), 600, proc)
        seconds = time.monotonic() - started
        keeper.stop(proc)
    finally:
        keeper.kill_all()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-per-shot", type=int, default=120)
    args = parser.parse_args()
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        film = base / "film.mkv"
        shots = demo.scenario(640, 360, eye=60, frames=args.frames_per_shot)
        synth.make_film(film, shots, size=(640, 360), gop=25)
        plain = make_ws(base / "plain")
        seconds = {"no Ray": run(plain, film, None, 1)}
        reference = snapshot(plain)
        port = _free_port()
        address = f"127.0.0.1:{port}"
        common = ["--num-cpus", "1", "--disable-usage-stats"]
        subprocess.run([RAY, "start", "--head", "--port", str(port), "--include-dashboard=false",
                        *common], env=env, check=True, capture_output=True)  # fmt: skip
        try:
            subprocess.run([RAY, "start", "--address", address, *common], env=env, check=True,
                           capture_output=True)  # fmt: skip
            same = {}
            for workers in (1, 2):
                root = make_ws(base / f"ray{workers}")
                seconds[f"Ray, {workers} worker(s)"] = run(root, film, address, workers)
                same[workers] = snapshot(root) == reference
        finally:
            subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True)
    frames = sum(s.frames for s in shots)
    print(f"film: {frames} frames 640×360, interval 10, 128 px crops; {os.cpu_count()} cores")
    for name, value in seconds.items():
        print(f"  {name:18s} {value:6.1f} s")
    ratio = seconds["Ray, 1 worker(s)"] / seconds["Ray, 2 worker(s)"]
    print(f"2 workers against 1: {ratio:.2f}× faster")
    print(f"same rows and files as without Ray: 1 worker {same[1]}, 2 workers {same[2]}")


if __name__ == "__main__":
    main()
