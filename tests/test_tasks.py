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


def test_job_parameters_are_checked_when_queued(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    CliRunner().invoke(main, ["-w", str(ws), "init"])

    def add(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["-w", str(ws), "jobs", "add", *args])
        return result.exit_code, result.output

    code, output = add("export", "-p", "colour=red")
    assert code != 0 and "no parameter 'colour'" in output and "out" in output
    code, output = add("export", "-p", "zip=x")
    assert code != 0 and "-p out=" in output  # the required folder is named before queueing
    assert add("export", "-p", f"target={tmp_path / 'x'}")[0] == 0  # the CLI's own word
    assert tasks.validate("train", {"data": "/data/root", "out": "/o"})["data"] == ["/data/root"]
    help_text = CliRunner().invoke(main, ["jobs", "add", "--help"]).output
    assert "reviewed_only" in help_text and "data*" in help_text
