"""Shared fixtures: the installed embedded models, a synthesised film, fresh workspaces."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelface import config, synth, workspace
from reelface.models import install
from reelface.synth import demo

# The film every extraction test uses: four real people, cuts, blur, tilt, a face cut by the edge.
FILM_SIZE = (960, 540)
FILM_EYE = 80.0
CROP = 256
SHOT_FRAMES = 30


@pytest.fixture(scope="session")
def models_dir() -> Path:
    root = config.models_dir(config.Config())
    if not install.detector_path(root).is_file():
        pytest.fail(f"embedded models missing in {root}: run `reelface models install` first")
    return root


@pytest.fixture(scope="session")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("film") / "four people.mp4"
    synth.make_film(
        path, demo.scenario(*FILM_SIZE, eye=FILM_EYE, frames=SHOT_FRAMES), size=FILM_SIZE
    )
    return path


@pytest.fixture
def ws(tmp_path: Path) -> workspace.Workspace:
    return workspace.init(tmp_path / "ws")


@pytest.fixture
def cli_env(ws: workspace.Workspace) -> dict[str, str]:
    return {**os.environ, "REELFACE_WORKSPACE": str(ws.root)}


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TUI catalogue written row by row (tests/tui_seed.py): no encoder, detector or embedder."""
    from tests import tui_seed

    return tui_seed.seed(tmp_path_factory.mktemp("seeded") / "ws").root


@pytest.fixture
def seeded(seeded_template: Path) -> Iterator[Path]:
    # A short path, so the dashboard's first line never wraps whatever the temp folder is.
    copy = Path(tempfile.mkdtemp(prefix="rf-")) / "ws"
    shutil.copytree(seeded_template, copy)
    yield copy
    shutil.rmtree(copy.parent, ignore_errors=True)
