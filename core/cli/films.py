"""The `films` commands: list a workspace's films, remove films, replace one film by another."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import closing
from pathlib import Path

import click
from rich.table import Table

from reelface import catalogue
from reelface.cli.group import main, open_workspace, out
from reelface.identity import decisions
from reelface.pipeline.thumbs import thumbs_of
from reelface.workspace import Workspace

REMOVED_DIR = "removed"  # where a removed film's folder goes: out of the way, not deleted


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def films(ctx: click.Context, as_json: bool) -> None:
    """List films with state and counts; `films remove` and `films replace` change them."""
    if ctx.invoked_subcommand is not None:
        return
    ws = open_workspace(ctx, create=False)
    with closing(catalogue.open_catalogue(ws.catalogue_path)) as conn:
        rows = catalogue.films(conn)
    if as_json:
        for row in rows:
            row["params"] = json.loads(row["params"])
            row.pop("fingerprint", None)  # packet digests: for matching copies, not for reading
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"films in {ws.root}")
    columns = ("id", "film", "kind", "state", "frames", "faces", "passed", "too small", "error")
    for column in columns:
        table.add_column(column)
    for row in rows:
        state = row["state"]
        if row["superseded_by"] is not None:
            state += f", superseded by {row['superseded_by']}"
        table.add_row(
            str(row["id"]),
            row["slug"],
            row["kind"],
            state,
            f"{row['last_frame'] + 1}/{row['frames_total'] or '?'}",
            str(row["faces"]),
            str(row["faces_passed"]),
            str(row["faces_small"]),
            row["error"] or "",
        )
    out.print(table)


def _free(path: Path) -> Path:
    """`path`, or path-2, path-3… when a film of that name was removed before."""
    candidate, n = path, 2
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}-{n}"), n + 1
    return candidate


def _set_aside(ws: Workspace, slug: str) -> tuple[Path, Path] | None:
    """Move a film's folder (crops, and the film itself if the daemon claimed it) under
    removed/; (from, to), or None when it has no folder."""
    folder = ws.film_dir(slug)
    if not folder.exists():
        return None
    target = _free(ws.root / REMOVED_DIR / slug)
    target.parent.mkdir(exist_ok=True)
    os.rename(folder, target)  # same filesystem: nothing is copied, nothing half-moved
    return folder, target


@films.command("remove")
@click.argument("refs", nargs=-1, required=True, metavar="FILM...")
@click.pass_context
def films_remove(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Remove films (id, slug or path) with their faces; their folders move to removed/."""
    ws = open_workspace(ctx, create=False)
    with closing(catalogue.open_catalogue(ws.catalogue_path)) as conn:
        rows = {int(r["id"]): r for r in (catalogue.film_or_fail(conn, f, ws.root) for f in refs)}
        freed = [
            f for f in catalogue.films(conn) if f["superseded_by"] in rows and f["id"] not in rows
        ]
        moved: list[tuple[Path, Path]] = []
        try:
            for row in rows.values():
                step = _set_aside(ws, row["slug"])
                if step:
                    moved.append(step)
            counts = catalogue.delete_films(conn, list(rows))
        except BaseException:
            for source, target in reversed(moved):  # the rows stay: so do their files
                os.rename(target, source)
            raise
    moved_to = {source.name: target for source, target in moved}
    for film_id, row in rows.items():
        shutil.rmtree(thumbs_of(ws.root, f"films/{row['slug']}"), ignore_errors=True)
        where = moved_to.get(row["slug"])
        files = (
            f"its folder moved to {where} (delete it to free the space)"
            if where
            else "it had no folder in the workspace"
        )
        out.print(
            f"removed film {film_id} ({row['slug']}, {row['path']}): {counts[film_id]} faces "
            f"and their decisions; {files}"
        )
    for film in freed:  # its only copy is gone: its faces are exported again
        out.print(f"film {film['id']} ({film['slug']}) is no longer superseded")


@films.command("replace")
@click.argument("old")
@click.argument("new")
@click.pass_context
def films_replace(ctx: click.Context, old: str, new: str) -> None:
    """Use film NEW instead of OLD: OLD's faces leave the export, its keep/discard decisions
    carry over to NEW's identical faces; OLD stays in the catalogue (see `films remove`)."""
    ws = open_workspace(ctx, create=False)
    with closing(catalogue.open_catalogue(ws.catalogue_path)) as conn:
        a = catalogue.film_or_fail(conn, old, ws.root)
        b = catalogue.film_or_fail(conn, new, ws.root)
        verdicts = decisions.state(conn).verdict
        carried = catalogue.supersede(conn, int(a["id"]), int(b["id"]), verdicts, "replace")
    out.print(
        f"film {a['id']} ({a['slug']}) is replaced by film {b['id']} ({b['slug']}): its faces "
        f"are left out of export, {carried} decisions carried over to the same faces of "
        f"film {b['id']}; `reelface films remove {a['id']}` deletes it"
    )
