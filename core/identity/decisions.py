"""A person's decisions: keep, discard, reassign, split, merge, name; undo and redo.

Every decision is a new row (append-only); undo and redo are rows too, so the history is never
rewritten and no file is ever moved or deleted. The effective state is a pure fold over the rows
(`fold`), overlaid on the latest automatic clustering (`view`): re-clustering changes only the
automatic layer, so it can never override what a person decided.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reelface import catalogue
from reelface.catalogue import transaction
from reelface.errors import ReelfaceError

FACE_KINDS = ("keep", "discard", "reassign", "split")
KINDS = (*FACE_KINDS, "merge", "name", "reject_link")


class DecisionError(ReelfaceError, ValueError):
    """A decision that cannot apply: unknown face or identity, nothing to undo or redo."""


@dataclass(frozen=True)
class Decision:
    """One row of the decisions table with the faces it covers."""

    id: int
    kind: str
    identity_id: int | None = None
    target_id: int | None = None
    ref: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    who: str = ""
    created: float = 0.0
    faces: tuple[int, ...] = ()


@dataclass
class State:
    """What the decisions say, after undo and redo."""

    verdict: dict[int, str] = field(default_factory=dict)  # face → keep | discard
    verdict_by: dict[int, int] = field(default_factory=dict)  # face → decision id
    override: dict[int, int] = field(default_factory=dict)  # face → identity a person chose
    redirect: dict[int, int] = field(default_factory=dict)  # merged identity → the one it joined
    names: dict[int, str] = field(default_factory=dict)
    rejected: set[tuple[int, int]] = field(default_factory=set)  # link suggestions turned down
    done: list[Decision] = field(default_factory=list)  # in effect, oldest first
    undone: list[Decision] = field(default_factory=list)  # redo stack, next redo last

    def resolve(self, identity: int | None) -> int | None:
        """Follow merges to the identity that absorbed this one."""
        seen = set()
        while identity in self.redirect and identity not in seen:
            seen.add(identity)
            identity = self.redirect[identity]
        return identity

    def identity_of(self, face: int, auto: int | None) -> int | None:
        return self.resolve(self.override.get(face, auto))


def fold(rows: Iterable[Decision]) -> State:
    """The effective state of a decision history (pure)."""
    done: list[Decision] = []
    undone: list[Decision] = []
    for row in rows:
        if row.kind == "undo":
            if done and done[-1].id == row.ref:
                undone.append(done.pop())
        elif row.kind == "redo":
            if undone and undone[-1].id == row.ref:
                done.append(undone.pop())
        else:
            done.append(row)
            undone.clear()  # a new decision ends the redo chain, as in every editor
    state = State(done=done, undone=undone)
    for row in done:
        if row.kind in ("keep", "discard"):
            for face in row.faces:
                state.verdict[face] = row.kind
                state.verdict_by[face] = row.id
        elif row.kind in ("reassign", "split"):
            for face in row.faces:
                state.override[face] = row.target_id
        elif row.kind == "merge":
            state.redirect[row.identity_id] = row.target_id
        elif row.kind == "name":
            state.names[row.identity_id] = row.payload["name"]
        elif row.kind == "reject_link":
            state.rejected.add((row.identity_id, row.target_id))
    return state


def history(conn: sqlite3.Connection) -> list[Decision]:
    """Every decision row, oldest first."""
    faces: dict[int, list[int]] = {}
    for did, fid in conn.execute("SELECT decision_id, face_id FROM decision_faces ORDER BY 1, 2"):
        faces.setdefault(did, []).append(fid)
    return [
        Decision(
            id=r["id"],
            kind=r["kind"],
            identity_id=r["identity_id"],
            target_id=r["target_id"],
            ref=r["ref"],
            payload=json.loads(r["payload"]),
            who=r["who"],
            created=r["created"],
            faces=tuple(faces.get(r["id"], ())),
        )
        for r in conn.execute("SELECT * FROM decisions ORDER BY id")
    ]


def state(conn: sqlite3.Connection) -> State:
    return fold(history(conn))


@dataclass(frozen=True)
class FaceView:
    """A face as the review sees it: automatic cluster, decisions applied."""

    face_id: int
    film_id: int
    auto_identity: int | None
    identity: int | None
    verdict: str | None
    outlier: float | None
    placed: bool = False  # a person chose its identity (reassign, split)


def auto_assignments(conn: sqlite3.Connection) -> dict[int, tuple[int | None, float | None]]:
    """face → (identity, outlier score) from the latest clustering run of its film."""
    rows = conn.execute(
        """SELECT a.face_id, a.identity_id, a.outlier FROM assignments a
           JOIN (SELECT film_id, MAX(id) AS run FROM cluster_runs GROUP BY film_id) r
           ON a.run_id = r.run"""
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def view(conn: sqlite3.Connection, st: State | None = None) -> dict[int, FaceView]:
    """Every face with its effective identity and latest verdict."""
    st = st or state(conn)
    auto = auto_assignments(conn)
    out = {}
    for face_id, film_id in conn.execute("SELECT id, film_id FROM faces ORDER BY id"):
        identity, outlier = auto.get(face_id, (None, None))
        out[face_id] = FaceView(
            face_id,
            film_id,
            identity,
            st.identity_of(face_id, identity),
            st.verdict.get(face_id),
            outlier,
            face_id in st.override,
        )
    return out


# ---------------------------------------------------------------------------------------------
# Recording (side effects)


def _who(who: str | None) -> str:
    if who:
        return who
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def _check_faces(conn: sqlite3.Connection, faces: list[int]) -> None:
    if not faces:
        raise DecisionError("no faces selected")
    marks = ",".join("?" * len(faces))
    found = {r[0] for r in conn.execute(f"SELECT id FROM faces WHERE id IN ({marks})", faces)}
    missing = sorted(set(faces) - found)
    if missing:
        raise DecisionError(f"no face {missing[0]} in the catalogue (see `reelface faces`)")


def _check_identity(conn: sqlite3.Connection, identity: int) -> None:
    if conn.execute("SELECT 1 FROM identities WHERE id = ?", (identity,)).fetchone() is None:
        raise DecisionError(f"no identity {identity} (see `reelface identities`)")


def record(
    conn: sqlite3.Connection,
    kind: str,
    who: str | None,
    faces: Iterable[int] = (),
    identity: int | None = None,
    target: int | None = None,
    ref: int | None = None,
    payload: dict | None = None,
) -> int:
    return catalogue.add_decision(
        conn, kind, _who(who), faces, identity, target, ref, payload or {}
    )


def keep(
    conn: sqlite3.Connection,
    faces: Iterable[int],
    who: str | None = None,
    payload: dict | None = None,
) -> int:
    """Mark faces as kept (export them even under --reviewed-only); payload says how chosen."""
    faces = list(faces)
    with transaction(conn):
        _check_faces(conn, faces)
        return record(conn, "keep", who, faces, payload=payload)


def discard(
    conn: sqlite3.Connection,
    faces: Iterable[int],
    who: str | None = None,
    payload: dict | None = None,
) -> int:
    """Mark faces as discarded (never exported); the crop files stay where they are."""
    faces = list(faces)
    with transaction(conn):
        _check_faces(conn, faces)
        return record(conn, "discard", who, faces, payload=payload)


def identity_or_fail(conn: sqlite3.Connection, identity: int, st: State | None = None) -> int:
    """The identity that `identity` is now (merges followed); DecisionError if there is none."""
    _check_identity(conn, identity)
    return (st or state(conn)).resolve(identity)


def faces_of(
    conn: sqlite3.Connection, identity: int, passed: bool | None = None
) -> tuple[int, list[int]]:
    """(identity now, its faces now), only those that pass (True) or fail (False) the rules."""
    st = state(conn)
    now = identity_or_fail(conn, identity, st)
    rules = dict(conn.execute("SELECT id, passed FROM faces"))
    faces = [
        f
        for f, v in view(conn, st).items()
        if v.identity == now and (passed is None or bool(rules[f]) == passed)
    ]
    return now, faces


def reassign(
    conn: sqlite3.Connection, faces: Iterable[int], identity: int, who: str | None = None
) -> int:
    """Move faces to an existing identity."""
    faces = list(faces)
    with transaction(conn):
        _check_faces(conn, faces)
        _check_identity(conn, identity)
        return record(conn, "reassign", who, faces, target=identity)


def split(conn: sqlite3.Connection, faces: Iterable[int], who: str | None = None) -> int:
    """Move faces to a new identity; returns the new identity's id."""
    faces = list(faces)
    with transaction(conn):
        _check_faces(conn, faces)
        film = conn.execute("SELECT film_id FROM faces WHERE id = ?", (faces[0],)).fetchone()[0]
        identity = catalogue.add_identity(conn, film)
        record(conn, "split", who, faces, target=identity)
        return identity


def merge(conn: sqlite3.Connection, source: int, into: int, who: str | None = None) -> int:
    """Merge identity `source` into `into` (also how a cross-film link is confirmed)."""
    with transaction(conn):
        _check_identity(conn, source)
        _check_identity(conn, into)
        st = state(conn)
        if st.resolve(source) == st.resolve(into):
            raise DecisionError(f"identities {source} and {into} are already one")
        return record(conn, "merge", who, identity=st.resolve(source), target=st.resolve(into))


def name(conn: sqlite3.Connection, identity: int, text: str, who: str | None = None) -> int:
    """Name an identity (the export folder takes the name)."""
    text = text.strip()
    if not text or "/" in text or text.startswith("."):
        raise DecisionError(f"bad identity name {text!r}: use letters, digits, '-', '_' or spaces")
    with transaction(conn):
        _check_identity(conn, identity)
        taken = {i for i, n in state(conn).names.items() if n == text and i != identity}
        if taken:
            raise DecisionError(f"name {text!r} is already identity {min(taken)}'s")
        return record(conn, "name", who, identity=identity, payload={"name": text})


def reject_link(conn: sqlite3.Connection, identity: int, other: int, who: str | None = None) -> int:
    """Turn down the suggestion that two identities are one person."""
    with transaction(conn):
        _check_identity(conn, identity)
        _check_identity(conn, other)
        return record(conn, "reject_link", who, identity=identity, target=other)


def _history_step(conn: sqlite3.Connection, kind: str, who: str | None) -> Decision:
    """Record an undo (of the latest decision in effect) or a redo (of the latest undone)."""
    with transaction(conn):
        st = state(conn)
        stack = st.done if kind == "undo" else st.undone
        if not stack:
            raise DecisionError(f"nothing to {kind}")
        last = stack[-1]
        record(conn, kind, who, ref=last.id)
        return last


def undo(conn: sqlite3.Connection, who: str | None = None) -> Decision:
    """Undo the latest decision in effect; returns it."""
    return _history_step(conn, "undo", who)


def redo(conn: sqlite3.Connection, who: str | None = None) -> Decision:
    """Redo the latest undone decision; returns it."""
    return _history_step(conn, "redo", who)
