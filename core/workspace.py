"""The workspace: one folder that holds the config, the catalogue, the faces, jobs and logs."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from . import backups
from . import config as config_mod
from .config import Config
from .errors import ReelfaceError
from .io import atomic_write

CONFIG_NAME = "reelface.toml"
CATALOGUE_NAME = "catalogue.sqlite"
FOLDERS = ("films", "inbox", "exports", "jobs", "logs")
ENV = "REELFACE_WORKSPACE"

# How a workspace was chosen, in the words the first output line uses.
FROM_OPTION = "-w"
FROM_ENV = f"${ENV}"
FROM_CWD = "found from cwd"
FROM_DEFAULT = "default"


class WorkspaceError(ReelfaceError, RuntimeError):
    """The workspace folder cannot be made, read or written; the message names the fix."""


@dataclass(frozen=True)
class Workspace:
    root: Path
    # How the root was chosen (FROM_*); "" when built directly. Not part of its identity.
    found: str = field(default="", compare=False)

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

    def holds_work(self) -> bool:
        """Whether anything here depends on the catalogue: extracted films or backups of it."""
        return any(
            folder.is_dir() and any(folder.iterdir())
            for folder in (self.films, backups.folder(self.root))
        )


def xdg_root() -> Path:
    """The workspace used when nothing else names one: in the XDG data folder."""
    return config_mod.data_home() / "workspace"


def enclosing(start: Path) -> Path | None:
    """The nearest folder from `start` upward that holds a reelface.toml, as git finds a repo."""
    here = start.expanduser().resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    return None


def locate(explicit: Path | None = None, cwd: Path | None = None) -> tuple[Path, str]:
    """(root, how): -w, else $REELFACE_WORKSPACE, else the enclosing workspace, else the default."""
    if explicit is not None:
        return explicit.expanduser().resolve(), FROM_OPTION
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser().resolve(), FROM_ENV
    try:
        found = enclosing(cwd or Path.cwd())
    except OSError:  # the current folder was deleted under us: nothing to search from
        found = None
    if found is not None:
        return found, FROM_CWD
    return xdg_root().expanduser().resolve(), FROM_DEFAULT


def default_root() -> Path:
    """The workspace used without -w: $REELFACE_WORKSPACE, the enclosing one, or the default."""
    return locate(None)[0]


def describe(ws: Workspace) -> str:
    """The line every command starts with: which workspace, and how it was chosen."""
    return f"workspace: {ws.root}" + (f" ({ws.found})" if ws.found else "")


def init(root: Path) -> Workspace:
    """Make (or complete) a workspace; an existing config is never overwritten."""
    from . import catalogue

    ws = Workspace(root.expanduser().resolve())
    try:
        ws.root.mkdir(parents=True, exist_ok=True)
        for name in FOLDERS:
            (ws.root / name).mkdir(exist_ok=True)
        if not ws.config_path.exists():
            atomic_write(ws.config_path, Config().to_toml().encode())
        probe = ws.root / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise WorkspaceError(
            f"cannot create workspace {ws.root}: {error.strerror or error} "
            "(choose a writable folder with --workspace or REELFACE_WORKSPACE)"
        ) from error
    backups.check(ws.root, ws.catalogue_path, ws.holds_work())  # init never resets one in use
    catalogue.open_catalogue(ws.catalogue_path).close()
    return ws


def open_workspace(root: Path | None, create: bool = True) -> Workspace:
    """The workspace at root (or the one `locate` finds), made on first use when `create`."""
    path, how = locate(root)
    ws = Workspace(path, how)
    if ws.exists():
        backups.check(ws.root, ws.catalogue_path, ws.holds_work())
        if ws.catalogue_path.exists():
            return ws
        return Workspace(init(ws.root).root, how)  # made but never used: nothing to lose
    if not create:
        elsewhere = ", or cd into a workspace, or pass -w FOLDER" if how == FROM_DEFAULT else ""
        raise WorkspaceError(
            f"no workspace at {ws.root} ({how}): run `reelface init {ws.root}`{elsewhere}"
        )
    return Workspace(init(ws.root).root, how)


def slugify(path: Path, content_hash: str) -> str:
    """A folder name from the file name (ASCII, short) plus a hash prefix so names never collide."""
    stem = unicodedata.normalize("NFKD", path.stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-").lower()[:48] or "film"
    return f"{stem}-{content_hash[:8]}"
