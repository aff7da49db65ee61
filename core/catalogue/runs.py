"""Identity rows, clustering runs, cross-film links and the decision log's rows: which identity each
face of a film was given, how, and what a person said about it."""

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


def set_links(conn: sqlite3.Connection, links: Iterable[tuple[int, int, float]]) -> None:
    """Record suggested cross-film links (identity, other, centroid distance)."""
    conn.executemany(
        "INSERT OR REPLACE INTO links (identity_id, other_id, distance, created) "
        "VALUES (?, ?, ?, ?)",
        [(a, b, d, time.time()) for a, b, d in links],
    )


def add_decision(
    conn: sqlite3.Connection,
    kind: str,
    who: str,
    faces: Iterable[int],
    identity: int | None,
    target: int | None,
    ref: int | None,
    payload: dict[str, Any],
) -> int:
    """Append one decision and the faces it names to the log (never updated, never deleted)."""
    cur = conn.execute(
        """INSERT INTO decisions (kind, identity_id, target_id, ref, payload, who, created)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (kind, identity, target, ref, json.dumps(payload), who, time.time()),
    )
    decision = int(cur.lastrowid)
    conn.executemany(
        "INSERT INTO decision_faces (decision_id, face_id) VALUES (?, ?)",
        [(decision, f) for f in sorted(set(faces))],
    )
    return decision
