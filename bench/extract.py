"""The old tool's extraction against reelface's, on synthesised films and the same models.

Old approach (bench/old_tool.py: FaceDatasetTools' face_crop_video.py, re-expressed): OpenCV
reads every frame, every Nth is detected alone at 640×640, each large face is warped to FFHQ,
whole-crop blur gate, PNG at OpenCV's default compression. No quality measures, no embeddings,
no catalogue.

reelface: the CLI (`reelface -w WS extract FILM --size S --interval N --json`), everything it
records included, with the models it picks on this machine (on a CPU the int8 copies of the same
SCRFD and dlib ResNet weights), and again with the float32 graphs (`[models] cpu_int8 = false`).

By default each run is a whole fresh `python` process, as a user meets both tools: start-up,
imports and model loading count. `--in-process` times only the work after loading instead. Each
side runs `--repeat` times, alternating, into fresh folders; the table shows the median run of
each (by seconds) and the ratio of the medians, with the spread of the ratio over the pairs
(this VM's speed drifts by several per cent between runs, so one pair is not a measure).
reelface's bytecode is compiled first, as pip does on install: an editable checkout under
PYTHONDONTWRITEBYTECODE (set on this build machine) would compile its ~50 modules at every start. A
second table per film shows where the time goes, stage by stage (median seconds; stages on
other threads overlap in wall time).

    python bench/extract.py [--size 1024] [--interval 10] [--frames-per-shot 60] [--repeat 3]
        [--films close-up-heavy,...] [--in-process] [--no-float32]
"""

from __future__ import annotations

import argparse
import compileall
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import reelface
from reelface import config, synth, workspace
from reelface.models import install, registry
from reelface.pipeline.extract import Extractor
from reelface.pipeline.results import STAGES
from reelface.synth import demo

OUT = Path(__file__).parent / "out"


def _unrotated(landmarks: np.ndarray, face: int, scale: float, shift: tuple[float, float]):
    """The pose that shows a photo unrotated at `scale`, shifted by `shift` frame pixels."""
    left, right = landmarks[face][0], landmarks[face][1]
    angle = -np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
    mid = (left + right) / 2 * scale
    return synth.Pose(
        (mid[0] + shift[0], mid[1] + shift[1]), np.linalg.norm(right - left) * scale, angle
    )


def _photos() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """insightface's t1 and scikit-image's astronaut, each with its faces' landmarks."""
    photos, marks = synth.package_photos(), synth.package_landmarks()
    t1 = synth.load_photo(photos["insightface_t1"])
    astro = synth.load_photo(photos["skimage_astronaut"])
    return t1, marks["insightface_t1"], astro, marks["skimage_astronaut"]


def film_like_shots(frames: int, eye: float) -> list[synth.Shot]:
    """A third close-ups; the rest wide shots of a group, a medium shot, and no face at all."""
    t1, t1m, astro, am = _photos()
    P = synth.Pose
    centre = (960.0, 460.0)
    return [
        synth.Shot(
            t1,
            t1m,
            0,
            frames,
            _unrotated(t1m, 0, 1.5, (0, 0)),
            _unrotated(t1m, 0, 1.5, (-60, 0)),
            label="wide",
        ),
        synth.Shot(astro, am, 0, frames, P(centre, eye), P((1000.0, 460.0), eye)),
        synth.Shot(
            astro,
            am,
            0,
            frames,
            P((960.0, -500.0), 300.0),
            P((900.0, -500.0), 300.0),
            label="no face",
        ),
        synth.Shot(astro, am, 0, frames, P(centre, 120.0), P(centre, 130.0), label="medium"),
        synth.Shot(t1, t1m, 2, frames, P(centre, eye), P(centre, eye * 1.1)),
        synth.Shot(
            t1,
            t1m,
            0,
            frames,
            _unrotated(t1m, 0, 1.6, (-40, -80)),
            _unrotated(t1m, 0, 1.6, (0, -80)),
            label="wide",
        ),
    ]


def close_up_heavy_shots(frames: int, eye: float) -> list[synth.Shot]:
    """A large face in every frame: photos held still or zoomed in, hard cuts between them."""
    t1, t1m, astro, am = _photos()
    P = synth.Pose
    centre = (960.0, 470.0)
    held, zoom = "held", "zoomed"
    return [
        synth.Shot(astro, am, 0, frames, P(centre, eye), P(centre, eye), label=held),
        synth.Shot(t1, t1m, 2, frames, P(centre, eye * 0.8), P(centre, eye * 1.1), label=zoom),
        synth.Shot(t1, t1m, 0, frames, P(centre, eye), P(centre, eye), label=held),
        synth.Shot(astro, am, 0, frames, P(centre, eye * 0.7), P(centre, eye), label=zoom),
        synth.Shot(t1, t1m, 3, frames, P(centre, eye * 0.9), P(centre, eye * 0.9), label=held),
        synth.Shot(t1, t1m, 5, frames, P(centre, eye * 0.8), P(centre, eye * 1.1), label=zoom),
        synth.Shot(t1, t1m, 4, frames, P((900.0, 520.0), eye), P((900.0, 520.0), eye), label=held),
        synth.Shot(astro, am, 0, frames, P(centre, eye * 1.1), P(centre, eye * 0.8), label=zoom),
    ]


FILMS = ("film-like", "close-ups", "close-up-heavy")


def film_path(kind: str, frames_per_shot: int, eye: float) -> Path:
    """The benchmark film, synthesised once into bench/out."""
    path = OUT / f"bench-1080p-{kind}-{frames_per_shot}-{int(eye)}.mp4"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        if kind == "close-ups":
            shots = demo.scenario(1920, 1080, eye=eye, frames=frames_per_shot)
        elif kind == "close-up-heavy":
            shots = close_up_heavy_shots(frames_per_shot, eye)
        else:
            shots = film_like_shots(frames_per_shot, eye)
        synth.make_film(path, shots, size=(1920, 1080), fps=25)
    return path


def _weights() -> Path:
    return config.models_dir(config.Config()) / install.DETECTOR_FILE


def old_whole(film: Path, size: int, interval: int, out: Path) -> dict:
    """The old tool as its own process; `seconds` is the whole process, start to exit."""
    command = [sys.executable, str(Path(__file__).with_name("old_tool.py")), str(film), str(out)]
    command += ["--weights", str(_weights()), "--size", str(size), "--interval", str(interval)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    run = json.loads(done.stdout.strip().splitlines()[-1])
    run["stages"]["start-up, rest"] = seconds - run["seconds"]
    return {**run, "seconds": seconds}


def reelface_whole(film: Path, size: int, interval: int, root: Path, int8: bool = True) -> dict:
    """The reelface CLI as its own process on a fresh workspace (made beforehand, not timed)."""
    ws = workspace.init(root)
    if not int8:
        text = ws.config_path.read_text(encoding="utf-8")
        ws.config_path.write_text(text.replace("cpu_int8 = true", "cpu_int8 = false"))
    script = Path(sys.executable).with_name("reelface")  # the console script, as users run it
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "reelface"]
    command += ["-w", str(root), "extract", str(film), "--json"]
    command += ["--size", str(size), "--interval", str(interval)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    (r,) = json.loads(done.stdout)
    stages = dict(r["stages"])
    stages["start-up, rest"] = seconds - r["seconds"]  # imports, models, probe, summary
    return {
        "sampled": r["frames_sampled"],
        "faces": r["faces_passed"] + r["faces_flagged"],
        "seconds": seconds,
        "stages": stages,
        "decode_fps": r["decode_frames_per_s"],
        "detect_fps": r["detect_frames_per_s"],
    }


def old_in_process(film: Path, size: int, interval: int, out: Path) -> dict:
    from old_tool import old_tool

    return old_tool(film, size, interval, 25.0, out, _weights())


def reelface_in_process(
    film: Path, size: int, interval: int, root: Path, int8: bool = True
) -> dict:
    ws = workspace.init(root)
    cfg = ws.config()
    cfg = replace(
        cfg,
        extract=replace(cfg.extract, size=size, interval=interval),
        models=replace(cfg.models, cpu_int8=int8),
    )
    detector, embedder = registry.load(cfg)
    started = time.perf_counter()
    with Extractor(ws, cfg, detector, embedder) as extractor:
        result = extractor.run(film)
    seconds = time.perf_counter() - started
    s = result.stats
    return {
        "frames": s.frames_reached,
        "sampled": s.frames_sampled,
        "faces": s.faces_kept + s.faces_flagged,
        "seconds": seconds,
        "stages": dict(s.stages),
        "decode_fps": s.rates()["decode_frames_per_s"],
        "detect_fps": s.rates()["detect_frames_per_s"],
    }


def _median(runs: list[dict]) -> dict:
    """The run with the median time (the slower middle one of an even count)."""
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def _stage_table(kind: str, sides: dict[str, list[dict]]) -> Table:
    """Median seconds per stage for each side; a stage a side does not have is blank."""
    table = Table(title=f"{kind}: where the time goes (median seconds per stage)")
    table.add_column("stage")
    for name in sides:
        table.add_column(name, justify="right")
    for stage in (*STAGES, "start-up, rest", "whole run"):
        cells = []
        for runs in sides.values():
            if stage == "whole run":
                cells.append(f"{statistics.median(r['seconds'] for r in runs):.2f}")
                continue
            values = [r["stages"][stage] for r in runs if stage in r["stages"]]
            cells.append(f"{statistics.median(values):.2f}" if values else "")
        table.add_row(stage, *cells)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--frames-per-shot", type=int, default=60)
    parser.add_argument("--eye", type=float, default=330.0, help="close-up eye distance, px")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side, alternating")
    parser.add_argument(
        "--films", default=",".join(FILMS), help="comma-separated, of " + ", ".join(FILMS)
    )
    parser.add_argument(
        "--in-process", action="store_true", help="time only the work after loading"
    )
    parser.add_argument("--no-float32", action="store_true", help="skip the float32 models' row")
    args = parser.parse_args()
    old_run, new_run = (
        (old_in_process, reelface_in_process) if args.in_process else (old_whole, reelface_whole)
    )
    how = "in process, after loading" if args.in_process else "whole processes"
    # An installed package has its bytecode (pip writes it); a checkout may not (see the top).
    compileall.compile_dir(Path(reelface.__file__).parent, quiet=1)
    console = Console(width=120)
    table = Table(
        title=f"extraction at {args.size}px, interval {args.interval}, 1920×1080 H.264, {how}"
    )
    for column in (
        "film",
        "approach",
        "sampled",
        "faces",
        "seconds",
        "frames/s",
        "faces/s",
        "ratio",
    ):
        table.add_column(column, justify="right")
    stage_tables = []
    for kind in args.films.split(","):
        film = film_path(kind, args.frames_per_shot, args.eye)
        sides: dict[str, list[dict]] = {"old tool": [], "reelface": []}
        if not args.no_float32:
            sides["reelface, float32"] = []
        for _ in range(max(1, args.repeat)):
            scratch = Path(tempfile.mkdtemp(prefix="reelface-bench-"))
            try:
                (scratch / "old").mkdir()
                sides["old tool"].append(old_run(film, args.size, args.interval, scratch / "old"))
                sides["reelface"].append(new_run(film, args.size, args.interval, scratch / "ws"))
                if not args.no_float32:
                    sides["reelface, float32"].append(
                        new_run(film, args.size, args.interval, scratch / "ws32", int8=False)
                    )
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        olds = sides["old tool"]
        old, new = _median(olds), _median(sides["reelface"])
        for name, runs in sides.items():
            r = _median(runs)
            ratio = ""
            if runs is not olds:
                spread = sorted(
                    o["seconds"] / n["seconds"] for o, n in zip(olds, runs, strict=True)
                )
                ratio = f"{old['seconds'] / r['seconds']:.2f}× ({spread[0]:.2f}–{spread[-1]:.2f})"
            table.add_row(
                f"{kind} ({old['frames']} frames)",
                name,
                str(r["sampled"]),
                str(r["faces"]),
                f"{r['seconds']:.2f}",
                f"{r['sampled'] / r['seconds']:.2f}",
                f"{r['faces'] / r['seconds']:.2f}",
                ratio,
            )
        stage_tables.append(_stage_table(kind, sides))
        console.print(
            f"{kind}: reelface decoded {new['decode_fps']:.0f} film frames/s and detected "
            f"{new['detect_fps']:.1f} sampled frames/s"
        )
    console.print(table)
    console.print(
        f"median of {max(1, args.repeat)} alternating runs a side; ratio = old seconds / "
        "reelface seconds (lowest–highest over the pairs). reelface also measured every rule, "
        "embedded every face and kept flagged faces with their reasons; the old tool kept only "
        "the faces it judged sharp and large enough."
    )
    for stages in stage_tables:
        console.print(stages)
    console.print(
        "decode, encode/write: on their own threads in reelface (decode includes the full RGB "
        "frames made for faces); start-up, rest: the whole process less the timed run (imports, "
        "model loading, probing, the summary)."
    )


if __name__ == "__main__":
    main()
