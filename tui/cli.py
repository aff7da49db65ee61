"""`reelface tui [WORKSPACE]`: start the review app."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .graphics.detect import CHOICES


@click.command("tui")
@click.argument("workspace", required=False, type=click.Path(path_type=Path))
@click.option(
    "--colors",
    type=click.Choice(["truecolor", "256", "16"]),
    default=None,
    help="Colour depth; truecolor unless TEXTUAL_COLOR_SYSTEM says otherwise.",
)
@click.option(
    "--graphics",
    type=click.Choice(CHOICES),
    default=None,
    help="How faces are drawn: ask the terminal (auto), kitty, sixel or halfblock; "
    "default: [tui] graphics in reelface.toml, else auto.",
)
@click.option("--probe", is_flag=True, help="Print the picture protocol detected, and exit.")
@click.pass_context
def tui(
    ctx: click.Context,
    workspace: Path | None,
    colors: str | None,
    graphics: str | None,
    probe: bool,
) -> None:
    """Review faces by keyboard: dashboard, identities, review grid (press ? for keys)."""
    # Faces in 256 colours look posterised; tmux and SSH often hide truecolor support.
    system = {"256": "256", "16": "standard"}.get(colors or "", colors)
    if system:
        os.environ["TEXTUAL_COLOR_SYSTEM"] = system
    else:
        os.environ.setdefault("TEXTUAL_COLOR_SYSTEM", "truecolor")
    from reelface import workspace as workspace_mod

    from . import settings
    from .graphics import detect

    ws = None
    if not probe or graphics is None:
        try:
            ws = workspace_mod.open_workspace(workspace or ctx.obj, create=False)
        except Exception:
            if not probe:
                raise
    setting = graphics or (settings.load(ws.config_path).graphics if ws else "auto")
    # Asked now: once Textual runs, its input thread takes the terminal's replies.
    found = detect.choose(setting)
    if probe:
        width, height = found.cell
        tmux = "; through tmux passthrough" if found.tmux else ""
        cell = f"cell {width}×{height} px{tmux}"
        click.echo(f"graphics: {found.protocol} (setting {setting}); {cell}")
        click.echo(f"detected: {found.found}")
        if found.hint:
            click.echo(found.hint)
        return
    from .app import ReelfaceApp

    ReelfaceApp(ws, found).run()
