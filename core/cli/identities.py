"""CLI commands for identities: cluster, identities, decisions, export and training roots."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

import click
from rich.markup import escape

from reelface import catalogue
from reelface.cli.group import main, open_workspace, out, print_json
from reelface.cli.tables import Column, table
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
            # Imported folders were sorted by hand already: --all leaves them as they are, and
            # a copy superseded by a longer one (films.py) would only split its people in two.
            ids = [
                r["id"]
                for r in catalogue.films(conn)
                if r["faces"]
                and not r["superseded_by"]
                and (force or not identify.imported(conn, r["id"]))
            ]
        else:
            if not films:
                raise click.UsageError("name a film (id, slug or path) or use --all")
            ids = [int(catalogue.film_or_fail(conn, ref, ws.root)["id"]) for ref in films]
        cfg = ws.config()  # the rules too: clustering refreshes the 'not recognised' flag
        results = [identify.cluster_film(conn, i, cfg.cluster, k, force, cfg.rules) for i in ids]
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
        print_json([asdict(r) for r in rows])
        return
    columns = (
        Column("identity", justify="right"),
        Column("name", free=True, min_width=8),
        Column("faces", justify="right"),
        Column("passed", justify="right", drop=3),
        Column("kept", justify="right"),
        Column("discarded", justify="right"),
        Column("similarity", drop=4),
        Column("films", free=True, min_width=10, drop=1),
        Column("looks like", free=True, min_width=10, drop=2),
    )
    cells = [
        [
            str(r.id),
            escape(r.name or ""),
            str(r.faces),
            str(r.passed),
            str(r.kept),
            str(r.discarded),
            f"{r.mean_similarity:.3f}±{r.spread:.3f}" if r.mean_similarity is not None else "",
            escape(", ".join(r.films)),
            ", ".join(f"identity {o} ({d:.3f})" for o, d in r.suggestions[:3]),
        ]
        for r in rows
    ]
    out.print(table(f"{len(rows)} identities", columns, cells, out.width))


@main.group()
def decide() -> None:
    """Record a decision (append-only; undo and redo are decisions too)."""


def _faces_arg(faces: tuple[int, ...]) -> list[int]:
    return list(faces)


def _some(faces: list[int]) -> str:
    """'face 10' or '3 faces (10, 11, 12)': face ids always named as faces."""
    if len(faces) == 1:
        return f"face {faces[0]}"
    shown = ", ".join(map(str, faces[:8])) + (", …" if len(faces) > 8 else "")
    return f"{len(faces)} faces ({shown})"


def _identity_label(conn, identity: int) -> str:
    name = decisions.state(conn).names.get(identity)
    return f"identity {identity}" + (f" ({name})" if name else "")


_IDENTITY = click.option(
    "--identity",
    type=int,
    help="Every face now in this identity (merges followed) instead of listed FACES.",
)
_FLAGGED = click.option(
    "--flagged", is_flag=True, help="With --identity: only its faces that fail the rules."
)
_PASSED = click.option(
    "--passed", is_flag=True, help="With --identity: only its faces that pass the rules."
)


def _verdict(ctx, kind: str, faces, identity, flagged: bool, passed: bool) -> None:
    """Record keep or discard for listed faces or for (part of) an identity, and say what."""
    record, done = (decisions.keep, "kept") if kind == "keep" else (decisions.discard, "discarded")
    if bool(faces) == (identity is not None):
        raise click.UsageError("give FACES or --identity N (not both)")
    if (flagged or passed) and identity is None:
        raise click.UsageError("--flagged and --passed need --identity")
    if flagged and passed:
        raise click.UsageError("--flagged or --passed, not both")
    with closing(_open(ctx)[1]) as conn:
        if identity is None:
            decision = record(conn, _faces_arg(faces))
            out.print(f"decision {decision}: {done} {_some(list(faces))}", soft_wrap=True)
            return
        rule = True if passed else False if flagged else None
        now, chosen = decisions.faces_of(conn, identity, rule)
        label = _identity_label(conn, now)
        if now != identity:
            label += f", which identity {identity} was merged into"
        which = "flagged " if flagged else "passed " if passed else ""
        if not chosen:
            out.print(f"{escape(label)} has no {which}faces: nothing {done}", soft_wrap=True)
            return
        how = {"identity": now, "only": which.strip() or "all"}
        decision = record(conn, chosen, payload=how)
        count = f"{len(chosen)} {which}face{'s' if len(chosen) != 1 else ''}"
        out.print(f"decision {decision}: {done} {count} of {escape(label)}", soft_wrap=True)


@decide.command("keep")
@click.argument("faces", nargs=-1, type=int)
@_IDENTITY
@_FLAGGED
@_PASSED
@click.pass_context
def decide_keep(ctx, faces, identity, flagged, passed) -> None:
    """Keep FACES (face ids, see `reelface faces`), or every face of --identity N."""
    _verdict(ctx, "keep", faces, identity, flagged, passed)


@decide.command("discard")
@click.argument("faces", nargs=-1, type=int)
@_IDENTITY
@_FLAGGED
@_PASSED
@click.pass_context
def decide_discard(ctx, faces, identity, flagged, passed) -> None:
    """Discard FACES, or every face of --identity N (files stay; nothing is deleted)."""
    _verdict(ctx, "discard", faces, identity, flagged, passed)


@decide.command("reassign")
@click.argument("identity", type=int)
@click.argument("faces", nargs=-1, type=int, required=True)
@click.pass_context
def decide_reassign(ctx, identity, faces) -> None:
    """Move faces to IDENTITY."""
    with closing(_open(ctx)[1]) as conn:
        decision = decisions.reassign(conn, _faces_arg(faces), identity)
        out.print(f"decision {decision}: {_some(list(faces))} → identity {identity}")


@decide.command("split")
@click.argument("faces", nargs=-1, type=int, required=True)
@click.pass_context
def decide_split(ctx, faces) -> None:
    """Move faces to a new identity."""
    with closing(_open(ctx)[1]) as conn:
        new = decisions.split(conn, _faces_arg(faces))
        out.print(f"new identity {new}: {_some(list(faces))}")


@decide.command("merge")
@click.argument("source", type=int)
@click.argument("into", type=int)
@click.pass_context
def decide_merge(ctx, source, into) -> None:
    """Merge identity SOURCE into INTO (confirms a suggested link)."""
    with closing(_open(ctx)[1]) as conn:
        decision = decisions.merge(conn, source, into)
        out.print(f"decision {decision}: identity {source} → identity {into}")


@decide.command("name")
@click.argument("identity", type=int)
@click.argument("text")
@click.pass_context
def decide_name(ctx, identity, text) -> None:
    """Name an identity."""
    with closing(_open(ctx)[1]) as conn:
        decision = decisions.name(conn, identity, text)
        out.print(f"decision {decision}: identity {identity} is {escape(repr(text))}")


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
    if not result.recorded:
        out.print("note: the workspace is read-only, so this export is not in its history")


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
            f"{r.no_face} images without a usable face, "
            f"{r.decisions} keep/discard decisions carried from its manifest"
        )
        for i in r.identities:
            if i.identity is not None:
                out.print(f"  identity {i.identity} {i.name!r}: {i.faces} faces")
        if r.lost:
            out.print(
                f"  {len(r.lost)} images a person kept or discarded in the exporting workspace "
                f"show no face here, so their decision is not applied: {', '.join(r.lost[:5])}"
                f"{' …' if len(r.lost) > 5 else ''} (in {r.folder})"
            )
        for a, b, d in r.links:
            out.print(
                f"  identity {a} {names.get(a, '')!r} looks like identity {b} (distance "
                f"{d:.3f}): `reelface decide merge {a} {b}` to confirm"
            )
