"""Near-duplicates: a static shot sampled every few frames gives the same face again and again.

Within one track (the same face followed through consecutive samples), faces whose aligned
crops are near-identical and whose embeddings say the same person form a group; the best stays,
the others get "duplicate: of frame F" (F's slot when a frame has more faces: a position in
the film, not a row id, so the same film gives the same reasons in any workspace). Nothing is
deleted: the flag is a reason like any other.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reelface.config import Config
from reelface.pipeline import quality

# Side of the grey thumbnail compared: enough for expression and pose, too coarse for grain,
# compression and a pixel of camera shake.
SIGNATURE = 24
# The part of the aligned crop compared (x1, y1, x2, y2 as shares): the face, not the background
# (which a pan changes while the face stays the same).
FACE_PART = (0.2, 0.2, 0.8, 0.9)
# How much a degree of yaw and a share of padding cost against sharpness points when choosing
# the face to keep: 20° of turn or 10 % of padding weigh like 5 points of sharpness.
YAW_COST = 0.25
PADDING_COST = 50.0


@dataclass(frozen=True, eq=False)
class Candidate:
    """One face as the duplicate pass sees it."""

    id: int
    track: int  # −1: alone in its shot, never a duplicate
    signature: np.ndarray  # unit-norm, zero-mean grey thumbnail
    embedding: np.ndarray  # unit-norm
    rank: float  # higher = better face to keep
    passed: bool  # passes every other rule


def signature(crop: np.ndarray) -> np.ndarray:
    """The face part of an aligned crop (any size, RGB or grey) as a zero-mean unit vector."""
    size = crop.shape[0]
    x1, y1, x2, y2 = (int(round(v * size)) for v in FACE_PART)
    part = crop[y1:y2, x1:x2]
    if part.ndim == 3:
        part = cv2.cvtColor(part, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(part, (SIGNATURE, SIGNATURE), interpolation=cv2.INTER_AREA)
    vector = small.astype(np.float64).ravel()
    vector -= vector.mean()
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 1e-9 else vector


def rank(measures: dict[str, float]) -> float:
    """How good a face is to keep: sharpest, most frontal, least padded."""
    return (
        float(measures.get("sharpness", 0.0))
        - YAW_COST * abs(float(measures.get("yaw", 0.0)))
        - PADDING_COST * float(measures.get("padding", 0.0))
    )


def groups(faces: list[Candidate], threshold: float, same_person: float) -> dict[int, int]:
    """Face id → the id of the face it duplicates, for every face that is not kept.

    Best first, each face joins the first kept face of its track it matches (signature
    correlation ≥ `threshold`, embedding distance ≤ `same_person`) or is kept itself; matching
    only kept faces stops a slow change from chaining a whole shot into one group.
    """
    out: dict[int, int] = {}
    if threshold <= 0:
        return out
    kept: dict[int, list[Candidate]] = {}
    for face in sorted(faces, key=lambda f: (not f.passed, -f.rank, f.id)):
        if face.track < 0:
            continue
        leaders = kept.setdefault(face.track, [])
        for leader in leaders:
            if (
                float(face.signature @ leader.signature) >= threshold
                and 1.0 - float(face.embedding @ leader.embedding) <= same_person
            ):
                out[face.id] = leader.id
                break
        else:
            leaders.append(face)
    return out


def marked(reasons: list[str], of: str | None) -> list[str]:
    """The reasons with any old duplicate mark replaced by one naming `of` (None: no mark)."""
    kept = [r for r in reasons if quality.reason_keys([r])[0] != "duplicate"]
    return kept if of is None else [*kept, f"duplicate: of {of}"]


def _position(row: dict) -> str:
    return f"frame {row['frame']}" + (f" slot {row['slot']}" if row.get("slot") else "")


@dataclass(frozen=True)
class Folded:
    """What a pass over one film did."""

    marked: int  # faces now marked duplicate
    flagged: int  # faces that passed before and are flagged now (negative: the other way)


def fold_film(conn: sqlite3.Connection, film_id: int, root: Path, config: Config) -> Folded:
    """Mark a film's near-duplicates in the catalogue, from scratch (old marks are replaced)."""
    from reelface.catalogue import quality as rows_of
    from reelface.identity import identify, tracking
    from reelface.pipeline.thumbs import load_thumb

    step = rows_of.film_step(conn, film_id)
    rows = rows_of.rule_rows(conn, film_id)
    if step is None or not rows:
        return Folded(0, 0)
    x = np.stack([r["embedding"] for r in rows]).astype(np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    same_person = identify.params_for(config.cluster, x.shape[1]).threshold
    frames = np.array([r["frame"] for r in rows])
    boxes = np.stack([r["box"] for r in rows])
    track = tracking.tracks(frames, boxes, x, step, config.cluster.track_iou, same_person)
    faces = []
    for row, vector, t in zip(rows, x, track, strict=True):
        others = marked(row["reasons"], None)
        sig = vector
        if t >= 0:  # the preview is the aligned crop shrunk; only tracked faces need it
            try:
                sig = signature(load_thumb(root, row["crop_path"]))
            except (OSError, cv2.error):  # crop and preview gone: judged alone, never lost
                t = -1
        faces.append(
            Candidate(
                id=row["id"],
                track=int(t),
                signature=sig,
                embedding=vector,
                rank=rank(row["measures"]),
                passed=quality.passes(others),
            )
        )
    duplicate_of = groups(faces, config.rules.duplicate, same_person)
    where = {row["id"]: _position(row) for row in rows}
    changes = []
    flagged = 0
    for row in rows:
        best = duplicate_of.get(row["id"])
        reasons = marked(row["reasons"], None if best is None else where[best])
        if reasons != row["reasons"]:
            passed = quality.passes(reasons)
            changes.append((row["id"], reasons, passed))
            flagged += int(row["passed"]) - int(passed)
    rows_of.set_reasons(conn, changes)
    return Folded(len(duplicate_of), flagged)
