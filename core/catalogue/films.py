"""Film rows: found by content or by the name a person types, added, their state and resets."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelface.catalogue.runs import add_decision
from reelface.catalogue.schema import CatalogueError, transaction

if TYPE_CHECKING:  # a record of probing, made by the pipeline; only its fields are read here
    from reelface.pipeline.decode import FilmInfo


class NoSuchFilm(CatalogueError):
    """A film reference (id, slug or path) that names no film of the workspace."""


def find_film(conn: sqlite3.Connection, content_hash: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM films WHERE content_hash = ?", (content_hash,)).fetchone()


def add_film(
    conn: sqlite3.Connection,
    info: FilmInfo,
    slug: str,
    params: dict[str, Any],
    fingerprint: list[str] | None = None,
) -> int:
    now = time.time()
    with transaction(conn):
        cur = conn.execute(
            """INSERT INTO films (slug, path, kind, size_bytes, content_hash, duration, fps,
               width, height, codec, frames_total, params, created, updated, fingerprint)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
                json.dumps(fingerprint) if fingerprint else None,
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
    ids = [(i,) for i in film_ids]
    # Jobs are history: they keep their row and lose the film they named.
    conn.executemany("UPDATE jobs SET film_id = NULL WHERE film_id = ?", ids)
    conn.executemany("DELETE FROM films WHERE id = ?", ids)


def delete_films(conn: sqlite3.Connection, film_ids: list[int]) -> dict[int, int]:
    """Delete films, their faces, clustering runs and the decisions' face rows, in one
    transaction; film id → faces it had. Identities and decision rows stay (the log is history)."""
    with transaction(conn):
        marks = ",".join("?" * len(film_ids))
        busy = conn.execute(
            f"SELECT id, film_id FROM jobs WHERE state = 'running' AND film_id IN ({marks})",
            film_ids,
        ).fetchone()
        if busy:
            raise CatalogueError(
                f"film {busy[1]} is being extracted by job {busy[0]}: cancel that job first "
                f"(`reelface jobs cancel {busy[0]}`), then remove the film"
            )
        counts = {
            i: conn.execute("SELECT COUNT(*) FROM faces WHERE film_id = ?", (i,)).fetchone()[0]
            for i in film_ids
        }
        remove_films(conn, film_ids)
    return counts


def same_start(a: list[str], b: list[str]) -> bool:
    """Whether two fingerprints begin alike: one film is a copy, or the start, of the other.

    A list shorter than the other ended within the fingerprint: its last packet may be cut
    mid-way (a truncated file), so it is not compared.
    """
    n = min(len(a), len(b))
    n -= len(a) != len(b)
    return n >= 3 and a[:n] == b[:n]


def same_video(
    conn: sqlite3.Connection, film_id: int, done_only: bool = False
) -> list[sqlite3.Row]:
    """Other current (not superseded, if `done_only` finished) films whose video begins as this
    film's does."""
    row = conn.execute("SELECT fingerprint FROM films WHERE id = ?", (film_id,)).fetchone()
    if row is None or not row[0]:
        return []
    mine = json.loads(row[0])
    others = conn.execute(
        "SELECT * FROM films WHERE id != ? AND fingerprint IS NOT NULL "
        "AND superseded_by IS NULL AND (state = 'done' OR NOT ?) ORDER BY id",
        (film_id, done_only),
    )
    return [r for r in others if same_start(mine, json.loads(r["fingerprint"]))]


def twin_share(conn: sqlite3.Connection, film_id: int, other_id: int) -> float:
    """Share of a film's faces that another film holds too (same frame, slot and box: the same
    decoded picture); 1.0 for a film without faces."""
    total, twins = conn.execute(
        """SELECT COUNT(*), COUNT(b.id) FROM faces a LEFT JOIN faces b ON b.film_id = ? AND
           b.frame = a.frame AND b.slot = a.slot AND b.box = a.box WHERE a.film_id = ?""",
        (other_id, film_id),
    ).fetchone()
    return twins / total if total else 1.0


def unfingerprinted(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Films extracted before fingerprints were recorded (catalogue v3)."""
    return conn.execute(
        "SELECT * FROM films WHERE kind = 'video' AND fingerprint IS NULL ORDER BY id"
    ).fetchall()


def set_fingerprint(conn: sqlite3.Connection, film_id: int, fingerprint: list[str]) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE films SET fingerprint = ? WHERE id = ?", (json.dumps(fingerprint), film_id)
        )


def supersede(
    conn: sqlite3.Connection, old: int, new: int, verdicts: dict[int, str], who: str
) -> int:
    """Film `old` is replaced by `new`: left out of export, kept in the catalogue.

    `verdicts` (face → keep | discard, the decisions' current state) of `old`'s faces are
    recorded again, as decisions by `who`, for `new`'s faces of the same frame, slot and box
    (the same decoded picture) that have none. Returns how many faces' verdicts were carried.
    """
    if old == new:
        raise CatalogueError(f"film {old} cannot replace itself; name two films")
    carried: dict[str, list[int]] = {}
    with transaction(conn):
        conn.execute("UPDATE films SET superseded_by = NULL WHERE id = ?", (new,))
        conn.execute(
            "UPDATE films SET superseded_by = ?, updated = ? WHERE id = ? OR superseded_by = ?",
            (new, time.time(), old, old),
        )
        pairs = conn.execute(
            """SELECT a.id, b.id FROM faces a JOIN faces b ON b.film_id = ? AND
               b.frame = a.frame AND b.slot = a.slot AND b.box = a.box WHERE a.film_id = ?""",
            (new, old),
        )
        for face, twin in pairs:
            if face in verdicts and twin not in verdicts:
                carried.setdefault(verdicts[face], []).append(twin)
        for kind, faces in sorted(carried.items()):
            add_decision(conn, kind, who, faces, None, None, None, {"from_film": old})
    return sum(len(f) for f in carried.values())


def reset_film(conn: sqlite3.Connection, film_id: int, params: dict[str, Any]) -> None:
    """Forget a film's faces and progress (extract --force), keeping the film row itself."""
    with transaction(conn):
        conn.execute("DELETE FROM faces WHERE film_id = ?", (film_id,))
        conn.execute(
            "UPDATE films SET last_frame = -1, frames_sampled = 0, faces_small = 0, "
            "state = 'new', error = NULL, params = ? WHERE id = ?",
            (json.dumps(params, sort_keys=True), film_id),
        )
