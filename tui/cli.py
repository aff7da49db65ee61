"""`reelface tui [WORKSPACE]`: start the review app."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command("tui")
@click.argument("workspace", required=False, type=click.Path(path_type=Path))
@click.option(
    "--colors",
    type=click.Choice(["truecolor", "256", "16"]),
    default=None,
    help="Colour depth; truecolor unless TEXTUAL_COLOR_SYSTEM says otherwise.",
)
@click.pass_context
def tui(ctx: click.Context, workspace: Path | None, colors: str | None) -> None:
    """Review faces by keyboard: dashboard, identities, review grid (press ? for keys)."""
    # Faces in 256 colours look posterised; tmux and SSH often hide truecolor support.
    system = {"256": "256", "16": "standard"}.get(colors or "", colors)
    if system:
        os.environ["TEXTUAL_COLOR_SYSTEM"] = system
    else:
        os.environ.setdefault("TEXTUAL_COLOR_SYSTEM", "truecolor")
    from reelface import workspace as workspace_mod

    from .app import ReelfaceApp

    ws = workspace_mod.open_workspace(workspace or ctx.obj, create=False)
    ReelfaceApp(ws).run()
