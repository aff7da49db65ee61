"""Film rows: found by content or by the name a person types, added, their state and resets."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelface.catalogue.schema import CatalogueError, transaction

if TYPE_CHECKING:  # a record of probing, made by the pipeline; only its fields are read here
    from reelface.pipeline.decode import FilmInfo


class NoSuchFilm(CatalogueError):
    """A film reference (id, slug or path) that names no film of the workspace."""


def find_film(conn: sqlite3.Connection, content_hash: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM films WHERE content_hash = ?", (content_hash,)).fetchone()


def add_film(conn: sqlite3.Connection, info: FilmInfo, slug: str, params: dict[str, Any]) -> int:
    now = time.time()
    with transaction(conn):
        cur = conn.execute(
            """INSERT INTO films (slug, path, kind, size_bytes, content_hash, duration, fps,
               width, height, codec, frames_total, params, created, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                slug,
                info.path,
                info.kind,
                info.size_bytes,
                info.content_hash,
                info.duration,
                info.fps,
                info.width,
                info.height,
                info.codec,
                info.frames_total,
                json.dumps(params, sort_keys=True),
                now,
                now,
            ),
        )
        return int(cur.lastrowid)


def set_film_state(
    conn: sqlite3.Connection, film_id: int, state: str, error: str | None = None, **extra: Any
) -> None:
    sets = ", ".join(f"{key} = ?" for key in extra)
    with transaction(conn):
        conn.execute(
            f"UPDATE films SET state = ?, error = ?, updated = ?{', ' + sets if sets else ''} "
            "WHERE id = ?",
            (state, error, time.time(), *extra.values(), film_id),
        )


def films(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every film with its face counts."""
    rows = conn.execute(
        """SELECT f.*, COUNT(x.id) AS faces, COALESCE(SUM(x.passed), 0) AS faces_passed
           FROM films f LEFT JOIN faces x ON x.film_id = f.id GROUP BY f.id ORDER BY f.id"""
    ).fetchall()
    return [dict(row) for row in rows]


def film_by_ref(conn: sqlite3.Connection, ref: str) -> sqlite3.Row | None:
    """A film by id, slug or path."""
    if ref.isdigit():
        row = conn.execute("SELECT * FROM films WHERE id = ?", (int(ref),)).fetchone()
        if row:
            return row
    return conn.execute(
        "SELECT * FROM films WHERE slug = ? OR path = ?", (ref, str(Path(ref).resolve()))
    ).fetchone()


def film_or_fail(conn: sqlite3.Connection, ref: str, root: Path | None = None) -> sqlite3.Row:
    """The film a person named (id, slug or path), or the one error that says where to look."""
    row = film_by_ref(conn, str(ref))
    if row is None:
        where = f" in {root}" if root else ""
        raise NoSuchFilm(f"no film {str(ref)!r}{where} (see `reelface films`)")
    return row


def add_export(
    conn: sqlite3.Connection,
    out: Path,
    options: dict[str, Any],
    manifest_sha256: str,
    counts: dict[str, int],
) -> None:
    """Record a finished export: where, with what options, and its manifest's checksum."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO exports (path, params, manifest_sha256, counts, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                str(out),
                json.dumps(options, sort_keys=True),
                manifest_sha256,
                json.dumps(counts, sort_keys=True),
                time.time(),
            ),
        )


def add_import(
    conn: sqlite3.Connection, archive: Path, sha256: str, film_id: int | None, counts: dict
) -> int:
    """Record an imported zip (inside the caller's transaction); IntegrityError if it is already."""
    cur = conn.execute(
        "INSERT INTO imports (path, sha256, film_id, counts, created) VALUES (?, ?, ?, ?, ?)",
        (str(archive), sha256, film_id, json.dumps(counts, sort_keys=True), time.time()),
    )
    return int(cur.lastrowid)


def remove_films(conn: sqlite3.Connection, film_ids: list[int]) -> None:
    """Delete films and, by the schema's cascades, their faces (inside the caller's transaction)."""
    conn.executemany("DELETE FROM films WHERE id = ?", [(i,) for i in film_ids])


def reset_film(conn: sqlite3.Connection, film_id: int, params: dict[str, Any]) -> None:
    """Forget a film's faces and progress (extract --force), keeping the film row itself."""
    with transaction(conn):
        conn.execute("DELETE FROM faces WHERE film_id = ?", (film_id,))
        conn.execute(
            "UPDATE films SET last_frame = -1, frames_sampled = 0, faces_small = 0, "
            "state = 'new', error = NULL, params = ? WHERE id = ?",
            (json.dumps(params, sort_keys=True), film_id),
        )
