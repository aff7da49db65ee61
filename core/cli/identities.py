"""CLI commands for identities: cluster, identities, decisions, export and training roots."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

import click
from rich.table import Table

from reelface import catalogue
from reelface.cli.group import main, open_workspace, out
from reelface.dataset import export as export_mod
from reelface.identity import decisions, identify


def _open(ctx: click.Context):
    ws = open_workspace(ctx, create=False)
    return ws, catalogue.open_catalogue(ws.catalogue_path)


@main.command()
@click.argument("films", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Cluster every film that has faces.")
@click.option("--k", type=click.IntRange(min=1), help="k-means with K clusters (the old tool).")
@click.option("--force", is_flag=True, help="Regroup imported (hand-sorted) folders too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def cluster(
    ctx, films: tuple[str, ...], every: bool, k: int | None, force: bool, as_json: bool
) -> None:
    """Group faces by identity, with no K to guess; a person's decisions always stay."""
    ws, conn = _open(ctx)
    try:
        if every:
            # Imported folders were sorted by hand already: --all leaves them as they are.
            ids = [
                r["id"]
                for r in catalogue.films(conn)
                if r["faces"] and (force or not identify.imported(conn, r["id"]))
            ]
        else:
            if not films:
                raise click.UsageError("name a film (id, slug or path) or use --all")
            ids = [int(catalogue.film_or_fail(conn, ref, ws.root)["id"]) for ref in films]
        results = [identify.cluster_film(conn, i, ws.config().cluster, k, force) for i in ids]
    finally:
        conn.close()
    if as_json:
        out.print_json(json.dumps([asdict(r) for r in results]))
        return
    for r in results:
        out.print(
            f"film {r.film_id}: {r.method}, {r.faces} faces → {len(r.identities)} identities, "
            f"{r.unsorted} unsorted"
        )
        for a, b, d in r.links:
            out.print(
                f"  identity {a} looks like identity {b} (distance {d:.3f}): "
                f"`reelface decide merge {a} {b}` to confirm"
            )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def identities(ctx, as_json: bool) -> None:
    """List identities with counts, spread and suggested links across films."""
    _, conn = _open(ctx)
    rows = identify.identities(conn)
    conn.close()
    if as_json:
        out.print_json(json.dumps([asdict(r) for r in rows]))
        return
    table = Table(title=f"{len(rows)} identities")
    for column in (
        "id",
        "name",
        "faces",
        "passed",
        "kept",
        "discarded",
        "similarity",
        "films",
        "looks like",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r.id),
            r.name or "",
            str(r.faces),
            str(r.passed),
            str(r.kept),
            str(r.discarded),
            f"{r.mean_similarity:.3f}±{r.spread:.3f}" if r.mean_similarity is not None else "",
            ", ".join(r.films),
            ", ".join(f"{o} ({d:.3f})" for o, d in r.suggestions[:3]),
        )
    out.print(table)


@main.group()
def decide() -> None:
    """Record a decision (append-only; undo and redo are decisions too)."""


def _faces_arg(faces: tuple[int, ...]) -> list[int]:
    return list(faces)


@decide.command("keep")
@click.argument("faces", nargs=-1, type=int, required=True)
@click.pass_context
def decide_keep(ctx, faces) -> None:
    """Keep faces."""
    with closing(_open(ctx)[1]) as conn:
        out.print(f"decision {decisions.keep(conn, _faces_arg(faces))}: kept {len(faces)}")


@decide.command("discard")
@click.argument("faces", nargs=-1, type=int, required=True)
@click.pass_context
def decide_discard(ctx, faces) -> None:
    """Discard faces (files stay; nothing is deleted)."""
    with closing(_open(ctx)[1]) as conn:
        out.print(f"decision {decisions.discard(conn, _faces_arg(faces))}: discarded {len(faces)}")


@decide.command("reassign")
@click.argument("identity", type=int)
@click.argument("faces", nargs=-1, type=int, required=True)
@click.pass_context
def decide_reassign(ctx, identity, faces) -> None:
    """Move faces to IDENTITY."""
    with closing(_open(ctx)[1]) as conn:
        decision = decisions.reassign(conn, _faces_arg(faces), identity)
        out.print(f"decision {decision}: {len(faces)} faces → identity {identity}")


@decide.command("split")
@click.argument("faces", nargs=-1, type=int, required=True)
@click.pass_context
def decide_split(ctx, faces) -> None:
    """Move faces to a new identity."""
    with closing(_open(ctx)[1]) as conn:
        out.print(f"new identity {decisions.split(conn, _faces_arg(faces))}")


@decide.command("merge")
@click.argument("source", type=int)
@click.argument("into", type=int)
@click.pass_context
def decide_merge(ctx, source, into) -> None:
    """Merge identity SOURCE into INTO (confirms a suggested link)."""
    with closing(_open(ctx)[1]) as conn:
        out.print(f"decision {decisions.merge(conn, source, into)}: {source} → {into}")


@decide.command("name")
@click.argument("identity", type=int)
@click.argument("text")
@click.pass_context
def decide_name(ctx, identity, text) -> None:
    """Name an identity."""
    with closing(_open(ctx)[1]) as conn:
        out.print(f"decision {decisions.name(conn, identity, text)}: {identity} is {text!r}")


@decide.command("undo")
@click.pass_context
def decide_undo(ctx) -> None:
    """Undo the latest decision."""
    with closing(_open(ctx)[1]) as conn:
        d = decisions.undo(conn)
        out.print(f"undone: decision {d.id} ({d.kind})")


@decide.command("redo")
@click.pass_context
def decide_redo(ctx) -> None:
    """Redo the latest undone decision."""
    with closing(_open(ctx)[1]) as conn:
        d = decisions.redo(conn)
        out.print(f"redone: decision {d.id} ({d.kind})")


@main.command("export")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--reviewed-only", is_flag=True, help="Only faces a person kept.")
@click.option(
    "--sizes",
    default="ffhq,arcface224",
    show_default=True,
    help="ffhq (the stored crop) and/or arcface224 (derived from it, no re-detection).",
)
@click.option(
    "--format",
    "image_format",
    type=click.Choice(["jpg", "png"]),
    default="jpg",
    show_default=True,
    help="Format of the 224 crops (SimSwap reads only *.jpg).",
)
@click.option("--zip", "zip_name", help="Also write NAME.zip (e.g. group07_final).")
@click.option("--identity", "only", multiple=True, type=int, help="Only this identity (repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def export_cmd(ctx, target, reviewed_only, sizes, image_format, zip_name, only, as_json) -> None:
    """Write identity folders, a manifest with provenance and checksums, and a zip."""
    chosen = tuple(s.strip() for s in sizes.split(",") if s.strip())
    bad = set(chosen) - {export_mod.FFHQ_DIR, export_mod.ARCFACE_DIR}
    if bad or not chosen:
        raise click.BadParameter(f"unknown size {sorted(bad)}; use ffhq,arcface224", "--sizes")
    ws, conn = _open(ctx)
    options = export_mod.ExportOptions(reviewed_only, chosen, image_format, zip_name, only)
    try:
        result = export_mod.export(ws.root, conn, target, ws.config(), options)
    finally:
        conn.close()
    if as_json:
        data = {**asdict(result), "path": str(result.path)}
        data["zip_path"] = str(result.zip_path) if result.zip_path else None
        out.print_json(json.dumps(data))
        return
    out.print(f"exported {result.faces} faces of {result.identities} identities to {result.path}")
    for reason, count in result.left_out.items():
        out.print(f"left out: {count} {reason}")
    if result.zip_path:
        out.print(f"zip: {result.zip_path}")


@main.command("train-root")
@click.argument("target", type=click.Path(path_type=Path))
@click.argument("exports", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--vggface", type=click.Path(path_type=Path), help="VGGFace2-224 root to link.")
def train_root_cmd(target, exports, vggface) -> None:
    """Link exported identities (224) beside a VGGFace2-224 root, for training; never copies."""
    counts = export_mod.train_root(target, list(exports), vggface)
    out.print(
        f"training root {target}: {counts['identities']} identity folders "
        f"({counts['exported']} exported)"
    )


@main.command("import")
@click.argument("archives", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--group", help="Name of the submitting group [the zip's name].")
@click.option("--size", type=click.IntRange(min=64, max=4096), help="Crop size [workspace's].")
@click.option("--models", "pack", help="'embedded' or an insightface pack name or folder.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def import_cmd(ctx, archives, group, size, pack, as_json) -> None:
    """Import groups' identity-foldered zips (or our exports): dedupe, extract, suggest links."""
    from dataclasses import replace

    from reelface.dataset import importer
    from reelface.models import registry
    from reelface.pipeline.extract import Extractor

    ws = open_workspace(ctx)
    cfg = ws.config()
    cfg = replace(cfg, extract=replace(cfg.extract, size=size or cfg.extract.size))
    detector, embedder = registry.load(cfg, pack)
    with Extractor(ws, cfg, detector, embedder) as extractor:
        results = [importer.import_archive(ws, extractor, Path(a), group) for a in archives]
    if as_json:
        data = [
            {**asdict(r), "archive": str(r.archive), "folder": str(r.folder or "")} for r in results
        ]
        out.print_json(json.dumps(data))
        return
    names = {}
    for r in results:
        names.update({i.identity: i.name for i in r.identities if i.identity is not None})
    for r in results:
        if r.state == "already":
            out.print(f"{r.archive.name}: already imported (import {r.import_id}); nothing to do")
            continue
        out.print(
            f"{r.archive.name} → {r.folder}: group {r.group}, {r.files} images, "
            f"{r.duplicates} duplicates skipped, {r.faces} faces in "
            f"{sum(i.identity is not None for i in r.identities)} identities, "
            f"{r.no_face} images without a usable face"
        )
        for i in r.identities:
            if i.identity is not None:
                out.print(f"  identity {i.identity} {i.name!r}: {i.faces} faces")
        for a, b, d in r.links:
            out.print(
                f"  identity {a} {names.get(a, '')!r} looks like identity {b} (distance "
                f"{d:.3f}): `reelface decide merge {a} {b}` to confirm"
            )
