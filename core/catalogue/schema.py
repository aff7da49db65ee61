"""The catalogue's schema and connection: versioned migrations, WAL, short transactions, models."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from reelface.errors import ReelfaceError
from reelface.models.base import ModelFile

# Each entry migrates the schema from version i to i + 1; never edit a shipped entry, append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        UNIQUE (role, name, sha256)
    );
    CREATE TABLE films (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('video', 'images')),
        size_bytes INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        duration REAL,
        fps REAL,
        width INTEGER,
        height INTEGER,
        codec TEXT,
        frames_total INTEGER,
        state TEXT NOT NULL DEFAULT 'new'
            CHECK (state IN ('new', 'extracting', 'done', 'failed')),
        params TEXT NOT NULL DEFAULT '{}',
        last_frame INTEGER NOT NULL DEFAULT -1,
        frames_sampled INTEGER NOT NULL DEFAULT 0,
        faces_small INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX films_hash ON films (content_hash);
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY,
        film_id INTEGER NOT NULL REFERENCES films (id) ON DELETE CASCADE,
        frame INTEGER NOT NULL,
        slot INTEGER NOT NULL,
        pts REAL,
        source TEXT,
        box TEXT NOT NULL,
        landmarks TEXT NOT NULL,
        landmarks_crop TEXT NOT NULL,
        matrix TEXT NOT NULL,
        crop_size INTEGER NOT NULL,
        crop_path TEXT NOT NULL,
        measures TEXT NOT NULL,
        reasons TEXT NOT NULL,
        passed INTEGER NOT NULL,
        embedding BLOB NOT NULL,
        detector_id INTEGER NOT NULL REFERENCES models (id),
        embedder_id INTEGER NOT NULL REFERENCES models (id),
        created REAL NOT NULL,
        UNIQUE (film_id, frame, slot)
    );
    CREATE INDEX faces_film ON faces (film_id, frame);
    """,
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL
            CHECK (kind IN ('extract', 'cluster', 'export', 'train', 'evaluate')),
        params TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'queued'
            CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        priority INTEGER NOT NULL DEFAULT 0,
        film_id INTEGER REFERENCES films (id),
        depends_on INTEGER REFERENCES jobs (id),
        progress REAL NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        worker TEXT,
        log_path TEXT,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        updated REAL NOT NULL
    );
    CREATE INDEX jobs_state ON jobs (state, priority, id);
    """,
    # v3: identities, clustering runs and their assignments, decisions (append-only), links
    # between identities, exports and imports. Face references cascade so that re-extracting a
    # film (which replaces its faces) does not fail on old rows.
    """
    CREATE TABLE identities (
        id INTEGER PRIMARY KEY,
        film_id INTEGER REFERENCES films (id) ON DELETE SET NULL,
        created REAL NOT NULL
    );
    CREATE TABLE cluster_runs (
        id INTEGER PRIMARY KEY,
        film_id INTEGER NOT NULL REFERENCES films (id) ON DELETE CASCADE,
        method TEXT NOT NULL,
        params TEXT NOT NULL,
        stats TEXT NOT NULL DEFAULT '[]',
        created REAL NOT NULL
    );
    CREATE TABLE assignments (
        run_id INTEGER NOT NULL REFERENCES cluster_runs (id) ON DELETE CASCADE,
        face_id INTEGER NOT NULL REFERENCES faces (id) ON DELETE CASCADE,
        identity_id INTEGER REFERENCES identities (id),
        outlier REAL,
        PRIMARY KEY (run_id, face_id)
    );
    CREATE INDEX assignments_face ON assignments (face_id, run_id);
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('keep', 'discard', 'reassign', 'split', 'merge',
            'name', 'reject_link', 'undo', 'redo')),
        identity_id INTEGER REFERENCES identities (id),
        target_id INTEGER REFERENCES identities (id),
        ref INTEGER REFERENCES decisions (id),
        payload TEXT NOT NULL DEFAULT '{}',
        who TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE decision_faces (
        decision_id INTEGER NOT NULL REFERENCES decisions (id) ON DELETE CASCADE,
        face_id INTEGER NOT NULL REFERENCES faces (id) ON DELETE CASCADE,
        PRIMARY KEY (decision_id, face_id)
    );
    CREATE TABLE links (
        identity_id INTEGER NOT NULL REFERENCES identities (id),
        other_id INTEGER NOT NULL REFERENCES identities (id),
        distance REAL NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (identity_id, other_id)
    );
    CREATE TABLE exports (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        params TEXT NOT NULL,
        manifest_sha256 TEXT NOT NULL,
        counts TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        film_id INTEGER REFERENCES films (id) ON DELETE SET NULL,
        counts TEXT NOT NULL,
        created REAL NOT NULL
    );
    """,
    # v4: a film's video fingerprint (SHA-256 of its first packets, JSON) finds a truncated or
    # remuxed copy of another; superseded_by names the film that replaced it (its faces are left
    # out of export, never deleted).
    """
    ALTER TABLE films ADD COLUMN fingerprint TEXT;
    ALTER TABLE films ADD COLUMN superseded_by INTEGER REFERENCES films (id) ON DELETE SET NULL
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class CatalogueError(ReelfaceError, RuntimeError):
    """The catalogue cannot be opened or is newer than this reelface."""


def writable(path: Path) -> bool:
    """Whether the catalogue and its folder can be written (WAL needs its -wal and -shm files)."""
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def open_catalogue(path: Path) -> sqlite3.Connection:
    """Open (and migrate) the catalogue; safe to share between the daemon and the TUI.

    A catalogue on a read-only folder or mount is opened read-only: reading commands work, and a
    write fails with READ_ONLY's one line (see is_read_only)."""
    try:
        if not writable(path) and path.exists():
            return _open_read_only(path)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        _migrate(conn)
    except sqlite3.DatabaseError as error:
        hint = "is it a reelface workspace?"
        if _disk_full(path):  # SQLite says only "disk I/O error" when its WAL index cannot grow
            hint = "disk full: free space and run the same command"
        raise CatalogueError(f"cannot open catalogue {path}: {error} ({hint})") from error
    return conn


def _disk_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < 64 * 1024  # under two WAL index pages
    except OSError:
        return False


def _open_read_only(path: Path) -> sqlite3.Connection:
    # mode=ro still needs the WAL index (-shm) beside the file; a cleanly closed catalogue has
    # none, and SQLite cannot make one on a read-only folder: then immutable=1 (nobody can be
    # writing a file on a folder nobody can write).
    uri = f"file:{quote(str(path.resolve()))}"
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)  # fmt: skip
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None,
                               check_same_thread=False)  # fmt: skip
    conn.row_factory = sqlite3.Row
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        conn.close()
        raise CatalogueError(
            f"catalogue {path} is read-only and at schema {version}, this reelface reads "
            f"{SCHEMA_VERSION}: open it once with write access, or use the matching reelface"
        )
    return conn


def is_read_only(error: BaseException) -> bool:
    """Whether `error` is SQLite refusing a write to a catalogue opened read-only."""
    return isinstance(error, sqlite3.OperationalError) and "readonly database" in str(error)


READ_ONLY = (
    "the catalogue is read-only here ({path}): this command writes to it; run it where the "
    "workspace is writable, or copy the workspace"
)


def _migrate(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise CatalogueError(
                f"catalogue schema {version} is newer than this reelface ({SCHEMA_VERSION}); "
                "upgrade reelface"
            )
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={step + 1}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken up front so concurrent writers queue instead of failing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")  # inside: a COMMIT that fails (disk full) must roll back too
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def model_id(conn: sqlite3.Connection, model: ModelFile) -> int:
    """Row id of a model file, recorded on first use."""
    conn.execute(
        "INSERT OR IGNORE INTO models (role, name, path, sha256) VALUES (?, ?, ?, ?)",
        (model.role, model.name, model.path, model.sha256),
    )
    row = conn.execute(
        "SELECT id FROM models WHERE role = ? AND name = ? AND sha256 = ?",
        (model.role, model.name, model.sha256),
    ).fetchone()
    return int(row[0])
