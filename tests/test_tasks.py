"""Jobs run the same core tasks as the CLI: cluster and export queued for the daemon."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reelface import workspace
from reelface.cli import main
from reelface.jobs import tasks
from tests.conftest import CROP


def test_cluster_and_export_jobs_do_what_the_commands_do(
    film: Path, tmp_path: Path, models_dir: Path
) -> None:
    root = tmp_path / "ws"
    result = CliRunner().invoke(main, ["-w", str(root), "extract", str(film), "--size", str(CROP)])
    assert result.exit_code == 0, result.output
    ws = workspace.Workspace(root)
    slug = json.loads(CliRunner().invoke(main, ["-w", str(root), "films", "--json"]).output)[0]
    summary = tasks.run("cluster", ws, {"film": slug["slug"]})
    assert len(summary["identities"]) >= 3 and summary["method"] == "auto"
    out = tmp_path / "export"
    done = tasks.run("export", ws, {"out": str(out), "zip": "group07_final"})
    assert done["faces"] > 0 and (out / "manifest.json").is_file()
    assert (
        Path(done["zip_path"]) == out / "group07_final.zip"
        and (out / "group07_final.zip").is_file()
    )
    with pytest.raises(tasks.NotAvailable, match="parameters do not fit"):
        tasks.run("export", ws, {"out": str(tmp_path / "x"), "colour": "red"})
    with pytest.raises(tasks.NotAvailable, match="not available"):
        tasks.run("paint", ws, {})
