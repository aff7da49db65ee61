"""Commands of a workspace's films: init, models, extract, faces, demo (`films`: cli/films.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import click

from reelface import catalogue
from reelface import config as config_mod
from reelface import workspace as workspace_mod
from reelface.cli.group import (
    Steps,
    announce,
    config_of,
    console,
    escape,
    main,
    open_workspace,
    out,
    print_json,
)
from reelface.identity import decisions
from reelface.pipeline.decode import FilmInfo, probe
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
    with Steps("installing models") as steps:
        rows = install.install(root, sdist, force, progress=steps)
    _print_models(rows, root)


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
    from reelface.cli.tables import Column, table

    columns = (
        Column("model"),  # the key of the row: whole, on one line
        Column("file", free=True, min_width=16, drop=1),
        Column("state", free=True, min_width=16),
    )
    cells = []
    for row in rows:
        note = escape(row.note)
        state = ("ok" + (f" · {note}" if note else "")) if row.ok else f"[red]{note}[/]"
        cells.append([escape(row.name), escape(str(row.path)), state])
    out.print(table(f"models in {root}", columns, cells, out.width))


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
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes sharing each film, segment by segment [1]: the same faces, sooner on many "
    "cores or GPUs.",
)
@click.option("--models", "pack", help="'embedded' or an insightface pack name or folder.")
@click.option("--force", is_flag=True, help="Extract again a film already done.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of tables.")
@click.pass_context
def extract(
    ctx, sources, interval, size, blur, min_face, exact, workers, pack, force, as_json
) -> None:
    """Detect, align, measure and embed the faces of films or image folders.

    A film's sidecar settings (clip.mp4.toml: [extract], [rules]) apply to it; options win."""
    with ThreadPoolExecutor(1) as pool:
        # The first film is opened and hashed while the workspace opens and the models load:
        # FFmpeg and onnxruntime both work outside the GIL (a 1080p film's start-up here: 30
        # ms less; begun before the workspace, 10 ms more).
        first = pool.submit(probe, Path(sources[0]))
        from reelface.models import registry

        ws = open_workspace(ctx)
        cfg = ws.config()
        detector, embedder = registry.load(cfg, pack)
    given = {
        "extract": {
            "interval": interval,
            "size": size,
            "exact_frames": exact or None,
            "workers": workers,
        },
        "rules": {"blur": blur, "min_face": min_face},
    }
    options = {k: {n: v for n, v in d.items() if v is not None} for k, d in given.items()}
    results = []
    for index, source in enumerate(sources):
        settings, used = config_mod.film_settings(Path(source))
        film_cfg = config_mod.with_settings(config_mod.with_settings(cfg, settings), options)
        parallel = None
        if film_cfg.extract.workers > 1:
            # Imported here: multiprocessing costs a one-process run 16 ms of its start.
            from reelface.pipeline.segments import ProcessSegments

            parallel = ProcessSegments(ws.root, film_cfg, pack, film_cfg.extract.workers)
        with Extractor(ws, film_cfg, detector, embedder, source=parallel) as extractor:
            info = first.result() if index == 0 else probe(Path(source))
            result = _extract_one(extractor, source, info, force, as_json)
        if used:
            result.stats.notes.insert(0, config_mod.describe_settings(settings, used))
        results.append(result)
    if as_json:
        print_json([_result_json(r) for r in results])
    else:
        _print_summary(results, detector, embedder)


def _extract_one(
    extractor: Extractor, source: Path, info: FilmInfo, force: bool, quiet: bool
) -> Result:
    if quiet:  # nothing drawn, and Rich's import (~35 ms) spared
        return extractor.run(source, force=force, info=info)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    total = info.frames_total
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[faces]}"),
        TimeRemainingColumn(),
        console=console.get(),
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
        # Busy seconds per stage (pipeline/results.py STAGES); threads overlap in wall time.
        "stages": {k: round(v, 4) for k, v in s.stages.items()},
        "unreadable": s.unreadable,
        "notes": s.notes,
        **{k: round(v, 2) for k, v in s.rates().items()},
    }


def _print_summary(results: list[Result], detector, embedder) -> None:
    from rich.table import Table

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
@click.option("--film", help="Only this film (id, slug or path).")
@click.option("--identity", type=int, help="Only the faces now in this identity (merges followed).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every field).")
@click.pass_context
def faces(ctx: click.Context, film: str | None, identity: int | None, as_json: bool) -> None:
    """List faces with identity, decision, source, measures, reasons and crop path."""
    ws = open_workspace(ctx, create=False)
    conn = catalogue.open_catalogue(ws.catalogue_path)
    with Steps("reading faces") as steps, closing(conn):
        film_id = int(catalogue.film_or_fail(conn, film, ws.root)["id"]) if film else None
        st = decisions.state(conn)
        wanted = None
        if identity is not None:
            wanted = decisions.identity_or_fail(conn, identity, st)
        rows = catalogue.faces(conn, film_id)
        views = decisions.view(conn, st)
        chosen = []
        for n, row in enumerate(rows):
            if n % 512 == 0:
                steps.update(n, len(rows))
            v = views[row["id"]]
            if wanted is not None and v.identity != wanted:
                continue
            row["identity"], row["auto_identity"] = v.identity, v.auto_identity
            row["decision"], row["outlier"] = v.verdict, v.outlier
            # crop_path stays relative to the workspace (it moves with it); crop_file is absolute.
            row["crop_file"] = str(ws.root / row["crop_path"])
            chosen.append(row)
        steps.update(len(rows), len(rows))
    rows = chosen
    if as_json:
        print_json(rows)
        return
    from reelface.cli.tables import Column, table

    columns = (
        Column("face", justify="right"),
        Column("identity", justify="right"),
        Column("decision", drop=1),
        Column("film", free=True, min_width=8, drop=7),
        Column("frame", justify="right"),
        Column("time", justify="right", drop=8),
        Column("source", free=True, min_width=8, drop=9),
        Column("upscale", justify="right", drop=3),
        Column("sharp", justify="right", drop=4),
        Column("roll", justify="right", drop=5),
        Column("yaw", justify="right", drop=5),
        Column("area", justify="right", drop=6),
        Column("reasons", free=True, min_width=10),
        Column("crop", free=True, min_width=16, drop=10),  # long: the first to go
    )
    cells = []
    for row in rows:
        m = row["measures"]
        cells.append([
            str(row["id"]),
            "" if row["identity"] is None else str(row["identity"]),
            row["decision"] or "",
            escape(row["film"]),
            str(row["frame"]),
            f"{row['pts']:.2f}s" if row["pts"] is not None else "",
            escape(row["source"] or ""),
            f"{m['upscale']:.2f}",
            f"{m['sharpness']:.0f}",
            f"{m['roll']:+.0f}°",
            f"{m['yaw']:+.0f}°",
            f"{m['face_area']:.0%}",
            "; ".join(row["reasons"]) or "ok",
            escape(row["crop_file"]),
        ])  # fmt: skip
    title = f"{len(rows)} faces" + (f" of identity {identity}" if identity is not None else "")
    out.print(table(title, columns, cells, out.width))


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
