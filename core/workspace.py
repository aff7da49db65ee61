"""The workspace: one folder that holds the config, the catalogue, the faces, jobs and logs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import config as config_mod
from .config import Config

CONFIG_NAME = "reelface.toml"
CATALOGUE_NAME = "catalogue.sqlite"
FOLDERS = ("films", "inbox", "exports", "jobs", "logs")


class WorkspaceError(RuntimeError):
    """The workspace folder cannot be made, read or written; the message names the fix."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def catalogue_path(self) -> Path:
        return self.root / CATALOGUE_NAME

    @property
    def films(self) -> Path:
        return self.root / "films"

    def film_dir(self, slug: str) -> Path:
        return self.films / slug

    def config(self) -> Config:
        return config_mod.load(self.config_path)

    def exists(self) -> bool:
        return self.config_path.is_file()


def default_root() -> Path:
    """$REELFACE_WORKSPACE, else the XDG data folder's workspace."""
    env = os.environ.get("REELFACE_WORKSPACE")
    return Path(env).expanduser() if env else config_mod.data_home() / "workspace"


def init(root: Path) -> Workspace:
    """Make (or complete) a workspace; an existing config is never overwritten."""
    from . import catalogue

    ws = Workspace(root.expanduser().resolve())
    try:
        ws.root.mkdir(parents=True, exist_ok=True)
        for name in FOLDERS:
            (ws.root / name).mkdir(exist_ok=True)
        if not ws.config_path.exists():
            tmp = ws.config_path.with_suffix(".toml.part")
            tmp.write_text(Config().to_toml(), encoding="utf-8")
            os.replace(tmp, ws.config_path)
        probe = ws.root / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise WorkspaceError(
            f"cannot create workspace {ws.root}: {error.strerror or error} "
            "(choose a writable folder with --workspace or REELFACE_WORKSPACE)"
        ) from error
    catalogue.open_catalogue(ws.catalogue_path).close()
    return ws


def open_workspace(root: Path | None, create: bool = True) -> Workspace:
    """The workspace at root (or the default), made on first use when `create`."""
    ws = Workspace((root or default_root()).expanduser().resolve())
    if ws.exists():
        return ws
    if not create:
        raise WorkspaceError(f"no workspace at {ws.root} (run `reelface init {ws.root}`)")
    return init(ws.root)
