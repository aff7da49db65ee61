"""The old tool's extraction (FaceDatasetTools' face_crop_video.py, re-expressed), timed by stage.

OpenCV reads every frame, every Nth is detected alone at 640×640, each face whose box is ≥ 0.7 ×
the crop size is warped to FFHQ at the crop size, the whole colour crop's Laplacian variance
gates blur, PNG written at OpenCV's default compression. No quality measures, no embeddings, no
catalogue. Run as a script it is one whole process, as the old tool is, and prints its counts
and stage seconds as JSON; it imports only what the old tool did (OpenCV, insightface).

    python bench/old_tool.py FILM OUT_FOLDER --weights scrfd.onnx [--size 1024] [--interval 10]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import cv2

from reelface.pipeline import align  # the FFHQ template and the least-squares fit only


def old_tool(
    film: Path, size: int, interval: int, blur: float, out: Path, weights: Path
) -> dict[str, float]:
    """Every frame read, one 640×640 detection per sampled frame, whole-crop blur, PNG.

    Detection goes through insightface's model zoo with its default onnxruntime settings, as the
    old tool's does, on the same SCRFD weights reelface uses.
    """
    from insightface.model_zoo import get_model

    detector = get_model(str(weights), providers=["CPUExecutionProvider"])
    detector.prepare(ctx_id=-1, input_size=(640, 640), det_thresh=0.6)
    stages: Counter = Counter()
    clock = time.perf_counter
    started = clock()  # opening the film counts, as reelface's probe and open do
    capture = cv2.VideoCapture(str(film))
    index = sampled = faces = 0
    while True:
        t = clock()
        ok, bgr = capture.read()
        stages["decode"] += clock() - t
        if not ok:
            break
        if index % interval == 0:
            sampled += 1
            t = clock()
            boxes, points = detector.detect(bgr)
            stages["coarse detect"] += clock() - t
            for n, (box, landmarks) in enumerate(zip(boxes, points, strict=True)):
                if max(box[2] - box[0], box[3] - box[1]) < 0.7 * size:
                    continue
                t = clock()
                matrix = align.align_matrix(landmarks, align.FFHQ, size)
                crop = cv2.warpAffine(bgr, matrix, (size, size), flags=cv2.INTER_LANCZOS4)
                t2 = clock()
                sharp = cv2.Laplacian(crop, cv2.CV_64F).var() >= blur
                t3 = clock()
                stages["align"] += t2 - t
                stages["measure"] += t3 - t2
                if not sharp:
                    continue
                cv2.imwrite(str(out / f"{index:06d}_{n}.png"), crop)
                stages["encode/write"] += clock() - t3
                faces += 1
        index += 1
    seconds = clock() - started
    return {
        "frames": index,
        "sampled": sampled,
        "faces": faces,
        "seconds": seconds,
        "stages": dict(stages),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("film", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--blur", type=float, default=25.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    run = old_tool(args.film, args.size, args.interval, args.blur, args.out, args.weights)
    print(json.dumps(run))


if __name__ == "__main__":
    main()
