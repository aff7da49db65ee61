"""The old tool's extraction against reelface's, on one synthesised film and the same models.

Old approach (FaceDatasetTools' face_crop_video.py, re-expressed): OpenCV reads every frame,
every Nth is detected alone at 640×640, each face whose box is ≥ 0.7 × the crop size is warped
to FFHQ at the crop size, the whole colour crop's Laplacian variance gates blur, PNG written at
OpenCV's default compression. No quality measures, no embeddings, no catalogue.

reelface: `Extractor.run` as the CLI runs it (everything it records included), with the
detector it picks on this machine (the int8 copy of the same SCRFD weights on a CPU), and again
with the float32 graph (`[models] cpu_int8 = false`) to show what the int8 copy adds.

Each side runs `--repeat` times, alternating, into fresh folders; the table shows the median
run of each (by seconds) and the ratio of the medians, with the spread of the ratio over the
pairs: this VM's speed drifts by several per cent between runs, so one pair is not a measure.

    python bench/extract.py [--size 1024] [--interval 10] [--frames-per-shot 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from reelface import config, synth, workspace
from reelface.models import install, registry
from reelface.pipeline import align
from reelface.pipeline.extract import Extractor
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


def film_like_shots(frames: int, eye: float) -> list[synth.Shot]:
    """A third close-ups; the rest wide shots of a group, a medium shot, and no face at all."""
    photos, marks = synth.package_photos(), synth.package_landmarks()
    t1 = synth.load_photo(photos["insightface_t1"])
    astro = synth.load_photo(photos["skimage_astronaut"])
    t1m, am = marks["insightface_t1"], marks["skimage_astronaut"]
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


def film_path(kind: str, frames_per_shot: int, eye: float) -> Path:
    """The benchmark film, synthesised once into bench/out."""
    path = OUT / f"bench-1080p-{kind}-{frames_per_shot}-{int(eye)}.mp4"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        if kind == "close-ups":
            shots = demo.scenario(1920, 1080, eye=eye, frames=frames_per_shot)
        else:
            shots = film_like_shots(frames_per_shot, eye)
        synth.make_film(path, shots, size=(1920, 1080), fps=25)
    return path


def old_tool(film: Path, size: int, interval: int, blur: float, out: Path) -> dict[str, float]:
    """Every frame read, one 640×640 detection per sampled frame, whole-crop blur, PNG.

    Detection goes through insightface's model zoo with its default onnxruntime settings, as the
    old tool's does, on the same SCRFD weights reelface uses.
    """
    from insightface.model_zoo import get_model

    weights = config.models_dir(config.Config()) / install.DETECTOR_FILE
    detector = get_model(str(weights), providers=["CPUExecutionProvider"])
    detector.prepare(ctx_id=-1, input_size=(640, 640), det_thresh=0.6)
    started = time.perf_counter()  # opening the film counts, as reelface's probe and open do
    capture = cv2.VideoCapture(str(film))
    index = sampled = faces = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if index % interval == 0:
            sampled += 1
            boxes, points = detector.detect(bgr)
            for n, (box, landmarks) in enumerate(zip(boxes, points, strict=True)):
                if max(box[2] - box[0], box[3] - box[1]) < 0.7 * size:
                    continue
                matrix = align.align_matrix(landmarks, align.FFHQ, size)
                crop = cv2.warpAffine(bgr, matrix, (size, size), flags=cv2.INTER_LANCZOS4)
                if cv2.Laplacian(crop, cv2.CV_64F).var() < blur:
                    continue
                cv2.imwrite(str(out / f"{index:06d}_{n}.png"), crop)
                faces += 1
        index += 1
    seconds = time.perf_counter() - started
    return {"frames": index, "sampled": sampled, "faces": faces, "seconds": seconds}


def reelface_run(
    film: Path, size: int, interval: int, root: Path, int8: bool = True
) -> dict[str, float]:
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
        "decode_fps": s.rates()["decode_frames_per_s"],
        "detect_fps": s.rates()["detect_frames_per_s"],
    }


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median time (the slower middle one of an even count)."""
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--frames-per-shot", type=int, default=60)
    parser.add_argument("--eye", type=float, default=330.0, help="close-up eye distance, px")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side, alternating")
    args = parser.parse_args()
    console = Console(width=120)
    table = Table(title=f"extraction at {args.size}px, interval {args.interval}, 1920×1080 H.264")
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
    for kind in ("film-like", "close-ups"):
        film = film_path(kind, args.frames_per_shot, args.eye)
        olds, news, exacts = [], [], []
        for _ in range(max(1, args.repeat)):
            scratch = Path(tempfile.mkdtemp(prefix="reelface-bench-"))
            try:
                (scratch / "old").mkdir()
                olds.append(old_tool(film, args.size, args.interval, 25.0, scratch / "old"))
                news.append(reelface_run(film, args.size, args.interval, scratch / "ws"))
                exacts.append(
                    reelface_run(film, args.size, args.interval, scratch / "ws32", int8=False)
                )
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        old, new = _median(olds), _median(news)
        for name, runs in (("old tool", olds), ("reelface", news), ("reelface, float32", exacts)):
            r = _median(runs)
            ratio = ""
            if runs is not olds:
                spread = sorted(
                    o["seconds"] / n["seconds"] for o, n in zip(olds, runs, strict=True)
                )
                ratio = f"{old['seconds'] / r['seconds']:.2f}× ({spread[0]:.2f}–{spread[-1]:.2f})"
            table.add_row(
                f"{kind} ({r['frames']} frames)",
                name,
                str(r["sampled"]),
                str(r["faces"]),
                f"{r['seconds']:.2f}",
                f"{r['sampled'] / r['seconds']:.2f}",
                f"{r['faces'] / r['seconds']:.2f}",
                ratio,
            )
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


if __name__ == "__main__":
    main()
