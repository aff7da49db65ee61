"""The workspace is found as git finds a repository, and every command says which one it uses."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from reelface import config, workspace
from reelface.cli import main
from tests.conftest import CROP


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Three workspaces (-w, env, cwd), an XDG default, and no $REELFACE_WORKSPACE set."""
    monkeypatch.delenv("REELFACE_WORKSPACE", raising=False)
    # The default workspace moves into tmp_path; the installed models stay where they are.
    monkeypatch.setenv("REELFACE_MODELS", str(config.models_dir(config.Config())))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    roots = {name: workspace.init(tmp_path / name).root for name in ("option", "env", "cwd")}
    deep = roots["cwd"] / "films" / "deeper"
    deep.mkdir(parents=True)
    return {**roots, "deep": deep, "default": tmp_path / "xdg" / "reelface" / "workspace"}


def first_line(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[0]


def test_extract_in_a_subfolder_lands_in_that_workspace(
    places: dict[str, Path], film: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(places["deep"])
    result = CliRunner().invoke(
        main, ["extract", str(film), "--size", str(CROP), "--interval", "15"]
    )
    assert result.exit_code == 0, result.output
    root = places["cwd"]
    assert result.output.splitlines()[0] == f"workspace: {root} (found from cwd)"
    conn = sqlite3.connect(root / "catalogue.sqlite")
    (faces,) = conn.execute("SELECT COUNT(*) FROM faces").fetchone()
    conn.close()
    assert faces > 0
    assert not places["default"].exists()  # nothing written to the XDG default silently
    # The other commands (core's and the daemon's) find it the same way.
    assert first_line("films") == f"workspace: {root} (found from cwd)"
    assert first_line("jobs", "list") == f"workspace: {root} (found from cwd)"


def test_option_beats_env_beats_cwd_beats_default(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(places["deep"])
    monkeypatch.setenv("REELFACE_WORKSPACE", str(places["env"]))
    option = places["option"]
    assert first_line("-w", str(option), "films") == f"workspace: {option} (-w)"
    assert first_line("films") == f"workspace: {places['env']} ($REELFACE_WORKSPACE)"
    monkeypatch.delenv("REELFACE_WORKSPACE")
    assert first_line("films") == f"workspace: {places['cwd']} (found from cwd)"
    # The TUI opens its workspace through the same function, handed -w (None here).
    assert workspace.open_workspace(None, create=False).root == places["cwd"]
    monkeypatch.chdir(places["deep"].parents[3])  # tmp_path's parent: no workspace above
    result = CliRunner().invoke(main, ["films"])
    assert result.exit_code == 2
    assert f"no workspace at {places['default']} (default)" in result.output
    assert "Traceback" not in result.output
    workspace.init(places["default"])
    assert first_line("films") == f"workspace: {places['default']} (default)"


def test_json_output_stays_json(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(places["deep"])
    result = CliRunner().invoke(main, ["films", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == []
