"""Reads and writes for rule passes over a film's committed faces (near-duplicates, and the
clustering verdict of identity/recognised.py)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import numpy as np

from reelface.catalogue.schema import transaction


def rule_rows(conn: sqlite3.Connection, film_id: int) -> list[dict[str, Any]]:
    """Every face of a film with what a rule pass needs: geometry, measures, reasons, embedding."""
    rows = conn.execute(
        """SELECT id, frame, box, measures, reasons, passed, embedding, crop_path, slot
           FROM faces WHERE film_id = ? ORDER BY frame, slot""",
        (film_id,),
    ).fetchall()
    return [
        {
            "id": int(r[0]),
            "frame": int(r[1]),
            "box": np.array(json.loads(r[2]), np.float64),
            "measures": json.loads(r[3]),
            "reasons": json.loads(r[4]),
            "passed": bool(r[5]),
            "embedding": np.frombuffer(r[6], np.float32),
            "crop_path": str(r[7]),
            "slot": int(r[8]),
        }
        for r in rows
    ]


def film_step(conn: sqlite3.Connection, film_id: int) -> int | None:
    """Frames between two samples of a video film; None for an image folder (no shots)."""
    row = conn.execute("SELECT kind, params FROM films WHERE id = ?", (film_id,)).fetchone()
    if row is None or row[0] != "video":
        return None
    return int(json.loads(row[1] or "{}").get("interval", 1))


def set_reasons(conn: sqlite3.Connection, changes: list[tuple[int, list[str], bool]]) -> None:
    """New reasons and rule verdict for some faces, in one transaction (decisions untouched)."""
    if changes:
        with transaction(conn):
            update_reasons(conn, changes)


def update_reasons(conn: sqlite3.Connection, changes: list[tuple[int, list[str], bool]]) -> None:
    """The same inside the caller's transaction."""
    conn.executemany(
        "UPDATE faces SET reasons = ?, passed = ? WHERE id = ?",
        [(json.dumps(reasons), int(passed), face) for face, reasons, passed in changes],
    )


def reasons_of(conn: sqlite3.Connection, face_ids: list[int]) -> dict[int, list[str]]:
    """The stored reasons of some faces, by id."""
    out: dict[int, list[str]] = {}
    for start in range(0, len(face_ids), 500):  # SQLite's bound-parameter limit
        chunk = face_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"SELECT id, reasons FROM faces WHERE id IN ({marks})", chunk)
        out.update((int(r[0]), json.loads(r[1])) for r in rows)
    return out
