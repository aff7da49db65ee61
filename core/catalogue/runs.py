"""Identity rows and clustering runs: which identity each face of a film was given, and how."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

# (face id, identity id or None for unsorted, outlier score or None)
Assignment = tuple[int, "int | None", "float | None"]


def add_identity(conn: sqlite3.Connection, film_id: int) -> int:
    """A new identity first seen in `film_id` (inside the caller's transaction)."""
    cur = conn.execute(
        "INSERT INTO identities (film_id, created) VALUES (?, ?)", (film_id, time.time())
    )
    return int(cur.lastrowid)


def add_run(
    conn: sqlite3.Connection,
    film_id: int,
    method: str,
    params: dict[str, Any],
    stats: list[dict[str, Any]],
    assignments: Iterable[Assignment],
) -> int:
    """Record one clustering (or import) run and its assignments, in the caller's transaction."""
    run = conn.execute(
        "INSERT INTO cluster_runs (film_id, method, params, stats, created) VALUES (?, ?, ?, ?, ?)",
        (film_id, method, json.dumps(params, sort_keys=True), json.dumps(stats), time.time()),
    ).lastrowid
    conn.executemany(
        "INSERT INTO assignments (run_id, face_id, identity_id, outlier) VALUES (?, ?, ?, ?)",
        [(run, *row) for row in assignments],
    )
    return int(run)
