"""Workspace creation, the config file and the catalogue schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from reelface import catalogue, config, workspace
from reelface.cli import main


def test_init_makes_every_part_and_keeps_an_edited_config(tmp_path: Path) -> None:
    root = tmp_path / "lab ws"
    result = CliRunner().invoke(main, ["init", str(root)])
    assert result.exit_code == 0, result.output
    for name in ("reelface.toml", "catalogue.sqlite", "films", "inbox", "exports", "jobs", "logs"):
        assert (root / name).exists(), name
    cfg_path = root / "reelface.toml"
    cfg_path.write_text(cfg_path.read_text().replace("interval = 10", "interval = 5"))
    workspace.init(root)
    assert workspace.Workspace(root).config().extract.interval == 5


def test_catalogue_is_wal_and_versioned(tmp_path: Path) -> None:
    ws = workspace.init(tmp_path / "ws")
    conn = catalogue.open_catalogue(ws.catalogue_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == catalogue.SCHEMA_VERSION
    conn.close()


def test_a_newer_catalogue_is_refused(tmp_path: Path) -> None:
    ws = workspace.init(tmp_path / "ws")
    raw = sqlite3.connect(ws.catalogue_path)
    raw.execute(f"PRAGMA user_version={catalogue.SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(catalogue.CatalogueError, match="upgrade reelface"):
        catalogue.open_catalogue(ws.catalogue_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[extract]\nintervall = 3\n", "unknown key 'intervall'"),
        ("[extract]\ninterval = 'ten'\n", "interval must be int"),
        ("[nonsense]\n", "unknown section"),
        ("[extract\n", "cannot read"),
    ],
)
def test_bad_config_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "reelface.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=message) as error:
        config.load(path)
    assert str(path) in str(error.value)


def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    ws = workspace.init(tmp_path / "ws")
    ws.config_path.write_text("[rules]\nblur = 'high'\n")
    result = CliRunner().invoke(main, ["-w", str(ws.root), "extract", str(tmp_path)])
    assert result.exit_code == 2
    assert "blur must be float" in result.output
