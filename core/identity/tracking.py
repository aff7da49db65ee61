"""Must-link tracks: the same face followed through consecutive sampled frames by box overlap
and embedding distance; cluster() keeps each track in one identity."""

from __future__ import annotations

import numpy as np

from .cluster import normalise


def tracks(
    frames: np.ndarray,
    boxes: np.ndarray,
    x: np.ndarray,
    step: int,
    min_iou: float = 0.3,
    threshold: float = 0.1,
) -> np.ndarray:
    """Track id per face (−1 alone): faces in consecutive sampled frames (`step` apart) whose
    boxes overlap by `min_iou` and whose embeddings are within `threshold`, matched one to one."""
    frames = np.asarray(frames)
    n = len(frames)
    out = np.full(n, -1, np.int64)
    if n == 0:
        return out
    x = normalise(x)
    by_frame: dict[int, list[int]] = {}
    for i in np.argsort(frames, kind="stable").tolist():
        by_frame.setdefault(int(frames[i]), []).append(i)
    next_id = 0
    previous: list[int] = []
    previous_frame = None
    for frame in sorted(by_frame):
        current = by_frame[frame]
        if previous_frame is not None and frame - previous_frame <= step:
            pairs = sorted(
                (
                    (-_iou(boxes[p], boxes[c]), p, c)
                    for p in previous
                    for c in current
                    if _iou(boxes[p], boxes[c]) >= min_iou and 1 - float(x[p] @ x[c]) < threshold
                ),
            )
            used_p: set[int] = set()
            used_c: set[int] = set()
            for _, p, c in pairs:
                if p in used_p or c in used_c:
                    continue
                used_p.add(p)
                used_c.add(c)
                if out[p] < 0:
                    out[p] = next_id
                    next_id += 1
                out[c] = out[p]
        previous, previous_frame = current, frame
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
