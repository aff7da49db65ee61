"""Commands of a workspace's films: init, models, extract, films, faces, demo."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from reelface import catalogue
from reelface import config as config_mod
from reelface import workspace as workspace_mod
from reelface.cli.group import announce, config_of, console, main, open_workspace, out
from reelface.identity import decisions
from reelface.pipeline.extract import Extractor, Result, Stats
from reelface.workspace import Workspace


@main.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.pass_context
def init(ctx: click.Context, directory: Path | None) -> None:
    """Make a workspace: config, catalogue and folders."""
    if directory is not None:
        root, how = directory.expanduser().resolve(), "argument"
    else:
        root, how = workspace_mod.locate(ctx.obj)
    ws = workspace_mod.init(root)
    announce(ctx, Workspace(ws.root, how))
    out.print(f"workspace ready: {ws.root}")
    out.print(f"config: {ws.config_path}")


@main.group()
def models() -> None:
    """Install and inspect face models."""


@models.command("install")
@click.option(
    "--sdist",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use this downloaded scrfd-0.3.0.tar.gz instead of fetching it with pip.",
)
@click.option("--force", is_flag=True, help="Fetch and rebuild even if already installed.")
@click.pass_context
def models_install(ctx: click.Context, sdist: Path | None, force: bool) -> None:
    """Put the embedded detector (from the registry's scrfd sdist, SHA-256 checked) in place."""
    from reelface.models import install

    cfg = config_of(ctx)
    root = config_mod.models_dir(cfg)
    _print_models(install.install(root, sdist, force), root)


@models.command("list")
@click.pass_context
def models_list(ctx: click.Context) -> None:
    """Show the installed embedded models and the configured model pack."""
    from reelface.models import install

    cfg = config_of(ctx)
    root = config_mod.models_dir(cfg)
    _print_models(install.status(root), root)
    out.print(f"configured pack: {cfg.models.pack}")


def _print_models(rows, root: Path) -> None:
    table = Table(title=f"models in {root}")
    for column in ("model", "file", "state"):
        table.add_column(column)
    for row in rows:
        state = ("ok" + (f" · {row.note}" if row.note else "")) if row.ok else f"[red]{row.note}[/]"
        table.add_row(row.name, str(row.path), state)
    out.print(table)


@main.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--interval", type=click.IntRange(min=1), help="Sample one frame in N [10].")
@click.option("--size", type=click.IntRange(min=64, max=4096), help="Crop size in pixels [1024].")
@click.option("--blur", type=float, help="Sharpness below this is flagged blurry [25].")
@click.option(
    "--min-face",
    type=click.FloatRange(0.05, 4.0),
    help="Smallest source face resolution as a share of the crop's [0.7]: a face may "
    "be enlarged at most 1/N times.",
)
@click.option("--exact", is_flag=True, help="Decode every frame and sample exact multiples of N.")
@click.option("--models", "pack", help="'embedded' or an insightface pack name or folder.")
@click.option("--force", is_flag=True, help="Extract again a film already done.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of tables.")
@click.pass_context
def extract(ctx, sources, interval, size, blur, min_face, exact, pack, force, as_json) -> None:
    """Detect, align, measure and embed the faces of films or image folders.

    A film's sidecar settings (clip.mp4.toml: [extract], [rules]) apply to it; options win."""
    from reelface.models import registry

    ws = open_workspace(ctx)
    cfg = ws.config()
    given = {
        "extract": {"interval": interval, "size": size, "exact_frames": exact or None},
        "rules": {"blur": blur, "min_face": min_face},
    }
    options = {k: {n: v for n, v in d.items() if v is not None} for k, d in given.items()}
    detector, embedder = registry.load(cfg, pack)
    results = []
    for source in sources:
        settings, used = config_mod.film_settings(Path(source))
        film_cfg = config_mod.with_settings(config_mod.with_settings(cfg, settings), options)
        with Extractor(ws, film_cfg, detector, embedder) as extractor:
            result = _extract_one(extractor, source, force, as_json)
        if used:
            result.stats.notes.insert(0, config_mod.describe_settings(settings, used))
        results.append(result)
    if as_json:
        out.print_json(json.dumps([_result_json(r) for r in results]))
    else:
        _print_summary(results, detector, embedder)


def _extract_one(extractor: Extractor, source: Path, force: bool, quiet: bool) -> Result:
    from reelface.pipeline.decode import probe

    info = probe(source)
    total = info.frames_total
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[faces]}"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=False,
    ) as progress:
        task = progress.add_task(Path(source).name[:40], total=total, faces="")

        def update(frame: int, stats: Stats) -> None:
            r = stats.rates()
            progress.update(
                task,
                completed=frame + 1,
                faces=f"passed {stats.faces_kept} flagged {stats.faces_flagged} "
                f"small {stats.faces_small} · decode {r['decode_frames_per_s']:.0f} fr/s "
                f"detect {r['detect_frames_per_s']:.1f} fr/s",
            )

        result = extractor.run(source, force=force, progress=update, info=info)
        if total:
            progress.update(task, completed=total)
    return result


def _result_json(result: Result) -> dict:
    s = result.stats
    return {
        "film_id": result.film_id,
        "slug": result.slug,
        "state": result.state,
        "output": str(result.output),
        "frames_sampled": s.frames_sampled,
        "faces_passed": s.faces_kept,  # passed the rules; "kept" is a person's decision
        "faces_flagged": s.faces_flagged,
        "faces_too_small": s.faces_small,
        "reasons": dict(s.reasons),
        "seconds": round(s.wall_seconds, 3),
        "notes": s.notes,
        **{k: round(v, 2) for k, v in s.rates().items()},
    }


def _print_summary(results: list[Result], detector, embedder) -> None:
    table = Table(title="extraction")
    for column in ("film", "state", "frames", "passed", "flagged", "too small"):
        table.add_column(column, justify="left" if column == "film" else "right")
    for r in results:
        s = r.stats
        table.add_row(
            r.slug,
            r.state,
            str(s.frames_sampled),
            str(s.faces_kept),
            str(s.faces_flagged),
            str(s.faces_small),
        )
    out.print(table)
    for r in results:
        s, rates = r.stats, r.stats.rates()
        reasons = ", ".join(f"{k} {v}" for k, v in s.reasons.most_common()) or "none"
        out.print(f"[bold]{r.slug}[/]  reasons: {reasons}")
        if r.state == "skipped":
            out.print("  already extracted (use --force to extract it again)")
            continue
        out.print(
            f"  speed: decode {rates['decode_frames_per_s']:.0f} film frames/s, "
            f"detect {rates['detect_frames_per_s']:.1f} sampled frames/s, "
            f"{rates['faces_per_s']:.1f} faces/s, {s.wall_seconds:.1f} s in all"
        )
        out.print(f"  faces: {r.output}")
        for note in s.notes:
            out.print(f"  [yellow]note:[/] {note}")
    out.print(f"models: {detector.name} + {embedder.name} ({embedder.dim}-d)")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def films(ctx: click.Context, as_json: bool) -> None:
    """List films with state and counts."""
    ws = open_workspace(ctx, create=False)
    conn = catalogue.open_catalogue(ws.catalogue_path)
    rows = catalogue.films(conn)
    conn.close()
    if as_json:
        for row in rows:
            row["params"] = json.loads(row["params"])
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"films in {ws.root}")
    for column in (
        "id",
        "film",
        "kind",
        "state",
        "frames",
        "faces",
        "passed",
        "too small",
        "error",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["slug"],
            row["kind"],
            row["state"],
            f"{row['last_frame'] + 1}/{row['frames_total'] or '?'}",
            str(row["faces"]),
            str(row["faces_passed"]),
            str(row["faces_small"]),
            row["error"] or "",
        )
    out.print(table)


@main.command()
@click.option("--film", help="Only this film (id, slug or path).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every field).")
@click.pass_context
def faces(ctx: click.Context, film: str | None, as_json: bool) -> None:
    """List faces with their source, geometry, measures, reasons and crop path."""
    ws = open_workspace(ctx, create=False)
    with closing(catalogue.open_catalogue(ws.catalogue_path)) as conn:
        film_id = int(catalogue.film_or_fail(conn, film, ws.root)["id"]) if film else None
        rows = catalogue.faces(conn, film_id)
        views = decisions.view(conn)
    for row in rows:
        v = views[row["id"]]
        row["identity"], row["auto_identity"] = v.identity, v.auto_identity
        row["decision"], row["outlier"] = v.verdict, v.outlier
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"{len(rows)} faces")
    for column in (
        "id",
        "film",
        "frame",
        "time",
        "source",
        "upscale",
        "sharp",
        "roll",
        "yaw",
        "area",
        "reasons",
        "crop",
    ):
        table.add_column(column)
    for row in rows:
        m = row["measures"]
        table.add_row(
            str(row["id"]),
            row["film"],
            str(row["frame"]),
            f"{row['pts']:.2f}s" if row["pts"] is not None else "",
            row["source"] or "",
            f"{m['upscale']:.2f}",
            f"{m['sharpness']:.0f}",
            f"{m['roll']:+.0f}°",
            f"{m['yaw']:+.0f}°",
            f"{m['face_area']:.0%}",
            "; ".join(row["reasons"]) or "ok",
            row["crop_path"],
        )
    out.print(table)


@main.command()
@click.option("--size", default=512, show_default=True, help="Crop size for the demo.")
@click.pass_context
def demo(ctx: click.Context, size: int) -> None:
    """Synthesise a short film from package-shipped photos and extract its faces."""
    from reelface.synth import demo as demo_mod

    ws = open_workspace(ctx)
    film = demo_mod.make_demo_film(ws, config_mod.models_dir(ws.config()), size)
    out.print(f"demo film: {film}")
    ctx.invoke(extract, sources=(film,), size=size)
