"""Commands that keep a workspace's catalogue safe: backup and restore."""

from __future__ import annotations

from pathlib import Path

import click

from reelface import backups
from reelface import workspace as workspace_mod
from reelface.cli.group import announce, main, out


@main.command()
@click.pass_context
def backup(ctx: click.Context) -> None:
    """Copy the catalogue now (SQLite's online backup; the newest five are kept)."""
    ws = workspace_mod.open_workspace(ctx.obj, create=False)
    announce(ctx, ws)
    out.print(f"backup: {backups.backup(ws.root, ws.catalogue_path)}")


@main.command()
@click.argument("source", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--list", "as_list", is_flag=True, help="List the backups, newest first.")
@click.pass_context
def restore(ctx: click.Context, source: Path | None, as_list: bool) -> None:
    """Put a catalogue backup (default: the newest) in place; the broken one is kept beside it."""
    # Not open_workspace: it refuses a workspace whose catalogue is lost, which is this case.
    root, how = workspace_mod.locate(ctx.obj)
    ws = workspace_mod.Workspace(root, how)
    announce(ctx, ws)
    if as_list:
        for path in backups.listing(ws.root):
            out.print(f"{path}  {path.stat().st_size} bytes")
        return
    chosen, kept = backups.restore(ws.root, ws.catalogue_path, source)
    out.print(f"restored {ws.catalogue_path} from {chosen}")
    if kept is not None:
        out.print(f"the catalogue it replaced: {kept}")
