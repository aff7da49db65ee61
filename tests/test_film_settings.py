"""Per-film settings: a film's sidecar and an inbox folder's films.toml set its crop size and
rules; the command line wins; `[rules] min_face` is the CLI's --min-face."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from reelface import config, synth, workspace
from reelface.cli import main
from reelface.synth import demo


@pytest.fixture(scope="module")
def two_films(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("settings-films")
    a, b = folder / "old tv.mp4", folder / "new.mp4"
    synth.make_film(a, demo.scenario(640, 360, eye=60, frames=16), size=(640, 360))
    synth.make_film(b, demo.scenario(640, 360, eye=60, frames=20), size=(640, 360))
    return a, b


def _ws(root: Path, size: int = 256) -> workspace.Workspace:
    ws = workspace.init(root)
    ws.config_path.write_text(ws.config_path.read_text().replace("size = 1024", f"size = {size}"))
    return ws


def _crop_sizes(ws: workspace.Workspace, slug: str) -> set[int]:
    crops = sorted((ws.root / "films" / slug / "faces").rglob("*.png"))
    assert crops, f"no crops for {slug}"
    return {cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape[0] for p in crops}


def test_min_face_is_a_rules_key_and_old_max_upscale_files_still_load(tmp_path: Path) -> None:
    path = tmp_path / "reelface.toml"
    path.write_text("[rules]\nmin_face = 0.5\n")
    rules = config.load(path).rules
    assert rules.min_face == 0.5 and rules.max_upscale == pytest.approx(2.0)
    path.write_text("[rules]\nmax_upscale = 2.0\n")  # what workspaces made before wrote
    assert config.load(path).rules.min_face == pytest.approx(0.5)
    assert "min_face" in config.Config().to_toml()


def test_a_sidecar_sets_one_films_crop_size_and_options_win(tmp_path: Path, two_films) -> None:
    a, b = two_films
    ws = _ws(tmp_path / "ws")
    config.sidecar(a).write_text("[extract]\nsize = 128\n\n[rules]\nmin_face = 0.3\n")
    try:
        env = {"REELFACE_WORKSPACE": str(ws.root)}
        result = CliRunner().invoke(main, ["extract", "--json", str(a), str(b)], env=env)
        assert result.exit_code == 0, result.output
        first, second = json.loads(result.output[result.output.index("[") :])
        assert _crop_sizes(ws, first["slug"]) == {128}
        assert _crop_sizes(ws, second["slug"]) == {256}  # the workspace's size
        assert "old tv.mp4.toml" in first["notes"][0] and "min_face 0.3" in first["notes"][0]
        assert not any("settings from" in n for n in second["notes"])

        again = ["extract", "--json", "--force", "--size", "192", str(a)]
        result = CliRunner().invoke(main, again, env=env)
        assert result.exit_code == 0, result.output
        assert _crop_sizes(ws, first["slug"]) == {192}
    finally:
        config.sidecar(a).unlink()


def test_a_bad_sidecar_stops_with_one_line_naming_it(tmp_path: Path, two_films) -> None:
    a, _ = two_films
    ws = _ws(tmp_path / "ws")
    config.sidecar(a).write_text('[models]\npack = "buffalo_l"\n')
    try:
        result = CliRunner().invoke(
            main, ["extract", str(a)], env={"REELFACE_WORKSPACE": str(ws.root)}
        )
    finally:
        config.sidecar(a).unlink()
    assert result.exit_code != 0
    assert "old tv.mp4.toml: unknown section [models]" in result.output
    assert "Traceback" not in result.output


def test_an_inbox_folders_settings_apply_to_the_films_dropped_in_it(
    tmp_path: Path, two_films, models_dir
) -> None:
    a, b = two_films
    ws = _ws(tmp_path / "ws")
    with open(ws.config_path, "a") as handle:
        handle.write(
            "\n[daemon]\nstable_seconds = 1.0\nclose_settle_seconds = 0.5\npoll_seconds = 0.1\n"
            "scan_seconds = 1.0\ncluster_after_extract = false\n"
        )
    small = ws.root / "inbox" / "tv"
    small.mkdir(parents=True)
    (small / config.FOLDER_SETTINGS).write_text("[extract]\nsize = 128\n")
    for film, folder in ((a, small), (b, ws.root / "inbox")):
        tmp = ws.root / f".{film.name}.copy"
        tmp.write_bytes(film.read_bytes())
        os.replace(tmp, folder / film.name)
    log = open(ws.root / "logs" / "daemon.out", "ab")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "reelface", "-w", str(ws.root), "daemon", "run", "--quiet"],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            with sqlite3.connect(ws.catalogue_path, timeout=30) as conn:
                states = conn.execute("SELECT state FROM jobs WHERE kind = 'extract'").fetchall()
            if len(states) == 2 and all(s == ("done",) for s in states):
                break
            assert proc.poll() is None, (ws.root / "logs" / "daemon.out").read_text()
            time.sleep(0.2)
        else:
            pytest.fail("the daemon did not extract both films in 120 s")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    with sqlite3.connect(ws.catalogue_path) as conn:
        slugs = dict(conn.execute("SELECT path, slug FROM films").fetchall())
    by_name = {Path(p).name: s for p, s in slugs.items()}
    assert _crop_sizes(ws, by_name[a.name]) == {128}
    assert _crop_sizes(ws, by_name[b.name]) == {256}
    assert (small / config.FOLDER_SETTINGS).exists()  # left where it was, for the next films
    job_log = "\n".join(p.read_text() for p in (ws.root / "logs").rglob("*.log"))
    assert "settings from" in job_log and "size 128" in job_log
