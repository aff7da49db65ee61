"""An evaluation report as a Rich table, JSON, CSV, a PNG grid and the aligned crops."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.table import Table

from reelface.evaluation.evaluate import DIRECTIONS, Report
from reelface.io import atomic_write, encode
from reelface.swap import convention

SHORT = {"source_to_target": "s→t", "target_to_source": "t→s"}
GRID_TILE = 160  # px per tile: 20 rows stay under 3400 px tall
PROTOCOL = {
    "distance": "1 - cos(ArcFace(result), ArcFace(reference))",
    "arcface_input": "[0,1] RGB, ImageNet mean/std, bicubic resize to 112x112, L2-normalised",
    "imagenet_mean": list(convention.IMAGENET_MEAN),
    "imagenet_std": list(convention.IMAGENET_STD),
    "source_to_target": "source identity on the target crop, compared with the source",
    "target_to_source": "target identity on the source crop, compared with the target",
    "compared_in": "the aligned crop (no paste-back); results rounded to uint8 as saved",
}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def table(report: Report) -> Table:
    """Per pair: each method's two distances; last row: the means. Notes in the last column."""
    grid = Table(title="ArcFace cosine distance (lower = more like the identity source)")
    grid.add_column("pair", justify="right")
    for method in report.methods:
        for direction in DIRECTIONS:
            grid.add_column(f"{method} {SHORT[direction]}", justify="right")
    grid.add_column("notes")
    for pair in report.pairs:
        cells = []
        for method in report.methods:
            result = report.results[method].get(pair.number)
            cells += [_fmt(result.distances[d] if result else None) for d in DIRECTIONS]
        notes = list(pair.notes) + ([] if pair.usable else ["skipped"])
        grid.add_row(pair.number, *cells, "; ".join(notes))
    means = []
    for method in report.methods:
        means += [_fmt(report.mean(method, d)) for d in DIRECTIONS]
    grid.add_section()
    grid.add_row("mean", *means, "")
    grid.caption = "  ".join(f"{m}: mean {_fmt(report.mean(m))}" for m in report.methods)
    return grid


def to_json(report: Report) -> dict[str, Any]:
    """Everything needed to read and reproduce the numbers."""
    pairs = []
    for pair in report.pairs:
        entry: dict[str, Any] = {
            "pair": pair.number,
            "source": pair.source.path.name if pair.source else None,
            "target": pair.target.path.name if pair.target else None,
            "used": pair.usable,
            "notes": pair.notes,
            "distances": {
                m: report.results[m][pair.number].distances
                for m in report.methods
                if pair.number in report.results[m]
            },
        }
        pairs.append(entry)
    return {
        "testset": report.testset,
        "protocol": PROTOCOL,
        "mean": {m: report.mean(m) for m in report.methods},
        "mean_by_direction": {
            m: {d: report.mean(m, d) for d in DIRECTIONS} for m in report.methods
        },
        "results": {m: 2 * len(report.results[m]) for m in report.methods},
        "pairs": pairs,
        "problems": report.problems,
        "info": report.info,
    }


def to_csv(report: Report) -> str:
    """One row per (pair, method, direction)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["pair", "source", "target", "method", "direction", "distance"])
    for pair in report.pairs:
        for method in report.methods:
            result = report.results[method].get(pair.number)
            if result is None:
                continue
            for direction in DIRECTIONS:
                writer.writerow(
                    [
                        pair.number,
                        pair.source.path.name,
                        pair.target.path.name,
                        method,
                        direction,
                        f"{result.distances[direction]:.6f}",
                    ]
                )
    return out.getvalue()


def _tile(crop: np.ndarray, label: str = "") -> np.ndarray:
    tile = cv2.resize(crop, (GRID_TILE, GRID_TILE), interpolation=cv2.INTER_AREA)
    if label:
        cv2.putText(tile, label, (4, GRID_TILE - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0))
    return tile


def grid(report: Report, methods: list[str] | None = None) -> np.ndarray | None:
    """RGB image: per pair, source, target, then each method's two results (with distances)."""
    methods = [m for m in (methods or report.methods) if m != "no swap"] or report.methods[:1]
    rows = []
    for pair in report.pairs:
        first = report.results[methods[0]].get(pair.number)
        if first is None:
            continue
        tiles = [_tile(first.source, f"{pair.number} source"), _tile(first.target, "target")]
        for method in methods:
            r = report.results[method][pair.number]
            tiles.append(
                _tile(r.source_on_target, f"{method} s>t {_fmt(r.distances[DIRECTIONS[0]])}")
            )
            tiles.append(
                _tile(r.target_on_source, f"{method} t>s {_fmt(r.distances[DIRECTIONS[1]])}")
            )
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0) if rows else None


def write(report: Report, out: Path, extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """report.json, report.csv, grid.png and crops/<method>/NN_*.png under `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "csv": out / "report.csv", "grid": out / "grid.png"}
    data = {**to_json(report), **(extra or {})}
    atomic_write(paths["json"], (json.dumps(data, indent=2) + "\n").encode())
    atomic_write(paths["csv"], to_csv(report).encode())
    picture = grid(report)
    if picture is not None:
        atomic_write(paths["grid"], encode(picture))
    for method, results in report.results.items():
        folder = out / "crops" / method.replace(" ", "_").replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        for number, r in results.items():
            for name, crop in (
                ("source", r.source),
                ("target", r.target),
                ("source_on_target", r.source_on_target),
                ("target_on_source", r.target_on_source),
            ):
                atomic_write(folder / f"{number}_{name}.png", encode(crop))
    paths["crops"] = out / "crops"
    return paths
