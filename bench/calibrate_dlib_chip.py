"""Derive where SCRFD's five landmarks fall on dlib's 150 px face chip (dlib_resnet.DLIB_CHIP).

dlib cuts its chip from its own 5-point shape predictor (eye corners and the base of the nose)
with get_face_chip(img, shape, 150, 0.25); our pipeline only has SCRFD's points (eye centres,
nose tip, mouth corners). For real faces found by both, this maps SCRFD's points through dlib's
image→chip transform and averages them. Run: python bench/calibrate_dlib_chip.py
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import cv2
import numpy as np

SCRFD_DIR = Path("/tmp/sd/scrfd-0.3.0")
SIZE = 150
PADDING = 0.25


def photos() -> list[Path]:
    import insightface

    found = [Path(os.path.dirname(insightface.__file__)) / "data" / "images" / "t1.jpg"]
    for name in ("gauss.png", "newton.png", "solvay_conference_1927.jpg"):
        if (SCRFD_DIR / "images" / name).is_file():
            found.append(SCRFD_DIR / "images" / name)
    return found


def mapping_to_chip(details) -> np.ndarray:
    """dlib's get_mapping_to_chip as a 2×3 matrix: the rect's rotated corners onto the chip's."""
    rect, angle = details.rect, details.angle
    cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
    cos, sin = math.cos(angle), math.sin(angle)

    def rotate(x: float, y: float) -> tuple[float, float]:
        dx, dy = x - cx, y - cy
        return cx + cos * dx - sin * dy, cy + sin * dx + cos * dy

    src = np.array(
        [
            rotate(rect.left(), rect.top()),
            rotate(rect.right(), rect.top()),
            rotate(rect.right(), rect.bottom()),
        ],
        np.float32,
    )
    dst = np.array(
        [[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]], np.float32
    )
    return cv2.getAffineTransform(src, dst).astype(np.float64)


def main() -> int:
    import dlib
    import face_recognition_models
    import insightface

    scrfd_path = SCRFD_DIR / "models" / "scrfd.onnx"
    if not scrfd_path.is_file():
        print(f"SCRFD model not found at {scrfd_path}", file=sys.stderr)
        return 1
    scrfd = insightface.model_zoo.get_model(str(scrfd_path))
    scrfd.prepare(ctx_id=-1, input_size=(640, 640))
    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )

    points, warp_errors = [], []
    for path in photos():
        bgr = cv2.imread(str(path))
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        boxes, kps = scrfd.detect(bgr)
        used = 0
        for rect in hog(rgb, 1):
            shape = predictor(rgb, rect)
            details = dlib.get_face_chip_details(shape, size=SIZE, padding=PADDING)
            matrix = mapping_to_chip(details)
            # Check the transform against dlib's own chip: same pixels up to interpolation.
            ours = cv2.warpAffine(rgb, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
            theirs = dlib.get_face_chip(rgb, shape, size=SIZE, padding=PADDING)
            warp_errors.append(float(np.abs(ours.astype(float) - theirs).mean()))
            # The SCRFD face whose box holds this dlib rectangle's centre, nearest first.
            centre = np.array([rect.center().x, rect.center().y], np.float64)
            inside = [
                i
                for i, box in enumerate(boxes)
                if box[0] <= centre[0] <= box[2] and box[1] <= centre[1] <= box[3]
            ]
            if not inside:
                continue
            best = min(
                inside, key=lambda i: np.linalg.norm(boxes[i, :2] / 2 + boxes[i, 2:4] / 2 - centre)
            )
            chip_points = kps[best].astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
            points.append(chip_points)
            used += 1
        print(f"{path.name}: {used} faces found by both detectors")

    if not points:
        print("no faces found by both detectors", file=sys.stderr)
        return 1
    stack = np.stack(points)
    mean, median, spread = stack.mean(0), np.median(stack, 0), stack.std(0)
    names = ["left eye", "right eye", "nose tip", "left mouth", "right mouth"]
    print(
        f"\n{len(stack)} faces; chip transform vs dlib.get_face_chip: mean abs pixel error "
        f"{np.mean(warp_errors):.2f} (max {np.max(warp_errors):.2f}) of 255"
    )
    print(
        f"{'point':12} {'mean x':>8} {'mean y':>8} {'median x':>9} {'median y':>9} "
        f"{'std x':>6} {'std y':>6}"
    )
    for name, m, md, s in zip(names, mean, median, spread, strict=True):
        row = f"{m[0]:8.3f} {m[1]:8.3f} {md[0]:9.3f} {md[1]:9.3f} {s[0]:6.2f} {s[1]:6.2f}"
        print(f"{name:12} {row}")
    rms = np.sqrt(((stack - mean) ** 2).sum(-1).mean())
    print(f"RMS distance of a face's points from the mean: {rms:.2f} px of {SIZE}")
    print("\nDLIB_CHIP points (paste into core/models/dlib_resnet.py):")
    for m in mean:
        print(f"            [{m[0]:.4f}, {m[1]:.4f}],")
    return 0


if __name__ == "__main__":
    sys.exit(main())
