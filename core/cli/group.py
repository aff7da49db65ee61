"""The `reelface` group and what its commands share: workspace, output, one-line errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import click

from reelface import backups, catalogue, errors
from reelface import config as config_mod
from reelface import workspace as workspace_mod
from reelface.workspace import Workspace

# SimSwap's 224 network files share every parameter name, so only their I/O tells them apart:
# the released "people" model (fs_networks) takes [0, 1] and ends in Tanh, its current trainer's
# (fs_networks_fix) takes ImageNet-normalised input. Unset, a probe decides (swap/simswap.py).
SIMSWAP_IO = click.option(
    "--simswap-io",
    type=click.Choice(["unit", "imagenet"]),
    default=None,
    help="A SimSwap generator file's input: unit ([0, 1], the released 'people' model) or "
    "imagenet (SimSwap's current trainer). Default: probed from the weights.",
)


class LazyConsole:
    """A Rich console made on first use: importing Rich is ~35 ms of every start, and a
    `--json` extraction never draws (bench/extract.py's films, 2 cores)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def get(self):  # -> rich.console.Console
        """The console itself, for Rich objects that take one."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    @property
    def made(self) -> bool:
        return self._console is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


console = LazyConsole(stderr=True)
out = LazyConsole()


def escape(text: str) -> str:
    """Text shown as itself in Rich markup (film names may hold [brackets])."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


# "1" draws progress on stderr even when it is no terminal (each step as a frame, so a log or a
# test sees every count); "0" never draws it; unset: only on a terminal.
PROGRESS_ENV = "REELFACE_PROGRESS"


def print_json(data: Any) -> None:
    """JSON on stdout as plain text: Rich's highlighter takes seconds on a few MB (`faces`)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


class Steps:
    """A progress bar on stderr for a long command; stdout (its --json) is never touched."""

    def __init__(self, description: str, total: int | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        wanted = os.environ.get(PROGRESS_ENV, "")
        self.forced = wanted == "1"
        # Made here, not at import: the variable may be set after the CLI is loaded (tests).
        target = Console(stderr=True, force_terminal=True) if self.forced else console.get()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=target,
            transient=not self.forced,
            # Rich would route stdout through stderr while the bar shows: --json must stay pure.
            redirect_stdout=False,
            redirect_stderr=False,
            disable=wanted == "0" or not (self.forced or console.is_terminal),
        )
        self.task = self.progress.add_task(escape(description), total=total)

    def __enter__(self) -> Steps:
        self.progress.start()
        return self

    def __exit__(
        self, kind: type | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.progress.stop()

    def update(self, done: int, total: int | None = None, description: str | None = None) -> None:
        """`done` of `total` steps, now at `description` (None keeps what was there)."""
        changes: dict[str, Any] = {"completed": done}
        if total is not None:
            changes["total"] = total
        if description is not None:
            changes["description"] = escape(description)  # film names may hold [brackets]
        self.progress.update(self.task, refresh=self.forced, **changes)

    def __call__(self, description: str, done: int, total: int) -> None:
        """The library's progress callbacks' form: (what now, steps done, steps in all)."""
        self.update(done, total, description)


def print_error(error: BaseException) -> None:
    """One of reelface's errors as the one line `reelface: error: …` on stderr."""
    # Escaped: messages quote config sections like [extract], which are not markup.
    console.print(
        f"[bold red]reelface: error:[/] {escape(errors.one_line(error))}",
        highlight=False,
        soft_wrap=True,
    )


def fail(error: BaseException) -> NoReturn:
    """Print one of reelface's errors as its one line and exit 2 (commands run on their own too)."""
    print_error(error)
    sys.exit(2)


class ReelfaceGroup(click.Group):
    """Turns the project's own errors into one line and exit code 2 instead of a traceback.

    Commands other than those registered at import come from `load_rest` on first need.
    """

    load_rest: Callable[[], None] | None = None

    def _rest(self) -> None:
        load, self.load_rest = self.load_rest, None
        if load is not None:
            load()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and self.load_rest is not None:
            self._rest()
            found = super().get_command(ctx, cmd_name)
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._rest()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as error:
            # Every error class reelface defines (errors.is_own), so none can be left off a list.
            if catalogue.is_read_only(error):  # a writing command on a read-only workspace
                where = Workspace(*workspace_mod.locate(ctx.obj)).catalogue_path
                fail(catalogue.CatalogueError(catalogue.READ_ONLY.format(path=where)))
            if not errors.is_own(error):
                raise
            fail(error)
        except KeyboardInterrupt:
            console.print("reelface: interrupted; run the same command again to resume")
            sys.exit(130)


@click.group(cls=ReelfaceGroup)
@click.option(
    "-w",
    "--workspace",
    type=click.Path(path_type=Path),
    help="Workspace folder. Without it: $REELFACE_WORKSPACE, else the nearest folder upward "
    "from here holding reelface.toml (as git finds a repository), else "
    "~/.local/share/reelface/workspace.",
)
@click.version_option(package_name="reelface")
@click.pass_context
def main(ctx: click.Context, workspace: Path | None) -> None:
    """reelface: films in, aligned and identity-organised face data sets out."""
    # Only -w itself: $REELFACE_WORKSPACE and the search upward are workspace.locate's, so the
    # daemon and the TUI, handed this None, find the same workspace and can say how.
    ctx.obj = workspace


def announce(ctx: click.Context, ws: Workspace) -> None:
    """Print, once per command, which workspace it uses and how it was found (dim, on stderr)."""
    meta = ctx.find_root().meta
    if meta.get("reelface.announced"):
        return
    meta["reelface.announced"] = True
    # Under --json only on a terminal: captured output (2>&1, test runners) stays pure JSON.
    if _wants_json(ctx) and not _stderr_is_terminal():
        return
    console.print(workspace_mod.describe(ws), style="dim", highlight=False, soft_wrap=True)


def _stderr_is_terminal() -> bool:
    """Rich's own test when it is loaded or told what to do; else whether stderr is a tty."""
    told = any(os.environ.get(k) for k in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"))
    if told or console.made:
        return bool(console.is_terminal)
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def _wants_json(ctx: click.Context | None) -> bool:
    while ctx is not None:
        if ctx.params.get("as_json"):
            return True
        ctx = ctx.parent
    return False


def open_workspace(ctx: click.Context, create: bool = True) -> Workspace:
    """The command's workspace (see workspace.locate), named on the first output line."""
    ws = workspace_mod.open_workspace(ctx.obj, create=create)
    announce(ctx, ws)
    # After the command's own work, so a backup holds what it just wrote (at most hourly).
    ctx.call_on_close(lambda: backups.backup_if_due(ws.root, ws.catalogue_path))
    return ws


def config_of(ctx: click.Context) -> config_mod.Config:
    """The workspace's config when there is one (it may name the models' folder), else defaults."""
    ws = Workspace(*workspace_mod.locate(ctx.obj))
    if not ws.exists():
        return config_mod.Config()
    announce(ctx, ws)
    return ws.config()
