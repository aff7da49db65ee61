"""Face rows: one batch committed with its film's progress, listed, and their embeddings."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reelface.catalogue.schema import transaction


@dataclass
class FaceRecord:
    """One face as it enters the catalogue."""

    frame: int
    slot: int
    pts: float | None
    source: str | None
    box: np.ndarray
    landmarks: np.ndarray
    landmarks_crop: np.ndarray
    matrix: np.ndarray
    crop_size: int
    crop_path: str
    measures: dict[str, float]
    reasons: list[str]
    passed: bool
    embedding: np.ndarray


def _round(array: np.ndarray) -> list:
    return np.round(np.asarray(array, np.float64), 4).tolist()


def commit_batch(
    conn: sqlite3.Connection,
    film_id: int,
    faces: list[FaceRecord],
    last_frame: int,
    frames_sampled: int,
    faces_small: int,
    detector_id: int,
    embedder_id: int,
) -> None:
    """Faces of a batch and the frame reached, in one transaction: the resume point."""
    now = time.time()
    with transaction(conn):
        conn.executemany(
            """INSERT INTO faces (film_id, frame, slot, pts, source, box, landmarks,
               landmarks_crop, matrix, crop_size, crop_path, measures, reasons, passed,
               embedding, detector_id, embedder_id, created)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                (
                    film_id,
                    f.frame,
                    f.slot,
                    f.pts,
                    f.source,
                    json.dumps(_round(f.box)),
                    json.dumps(_round(f.landmarks)),
                    json.dumps(_round(f.landmarks_crop)),
                    json.dumps(_round(f.matrix)),
                    f.crop_size,
                    f.crop_path,
                    json.dumps({k: round(v, 4) for k, v in f.measures.items()}),
                    json.dumps(f.reasons),
                    int(f.passed),
                    np.asarray(f.embedding, np.float32).tobytes(),
                    detector_id,
                    embedder_id,
                    now,
                )
                for f in faces
            ],
        )
        conn.execute(
            """UPDATE films SET last_frame = ?, frames_sampled = frames_sampled + ?,
               faces_small = faces_small + ?, updated = ? WHERE id = ?""",
            (last_frame, frames_sampled, faces_small, now, film_id),
        )


def faces(conn: sqlite3.Connection, film_id: int | None = None) -> list[dict[str, Any]]:
    """Every face (of one film) as plain data, embeddings left out."""
    query = """SELECT x.*, f.slug AS film, f.path AS film_path, d.name AS detector,
               e.name AS embedder FROM faces x JOIN films f ON f.id = x.film_id
               JOIN models d ON d.id = x.detector_id JOIN models e ON e.id = x.embedder_id"""
    args: tuple = ()
    if film_id is not None:
        query += " WHERE x.film_id = ?"
        args = (film_id,)
    out = []
    for row in conn.execute(query + " ORDER BY x.film_id, x.frame, x.slot", args):
        item = dict(row)
        item.pop("embedding")
        for key in ("box", "landmarks", "landmarks_crop", "matrix", "measures", "reasons"):
            item[key] = json.loads(item[key])
        item["passed"] = bool(item["passed"])
        out.append(item)
    return out


def embeddings(
    conn: sqlite3.Connection, film_id: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Face ids and their embeddings as one (N, dim) float32 array."""
    query = "SELECT id, embedding FROM faces"
    args: tuple = ()
    if film_id is not None:
        query += " WHERE film_id = ?"
        args = (film_id,)
    rows = conn.execute(query + " ORDER BY id", args).fetchall()
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    ids = np.array([r[0] for r in rows], np.int64)
    return ids, np.stack([np.frombuffer(r[1], np.float32) for r in rows])


def crop_names(conn: sqlite3.Connection, film_id: int) -> set[str]:
    """File names of the crops a film's committed rows point at."""
    rows = conn.execute("SELECT crop_path FROM faces WHERE film_id = ?", (film_id,))
    return {Path(r[0]).name for r in rows}
