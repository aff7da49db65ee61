"""What the review screens show and do, as plain objects: tested without Textual.

Every method that reads or writes the catalogue takes the connection to use, because the screens
call some of them on the UI thread (keep, discard) and the rest from a worker (see background.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field

from reelface.identity import decisions, recognised
from reelface.pipeline import quality

SORTS = ("outliers", "quality", "time")
# Filters offered in the review grid: every rule's reason, plus "duplicate" when the catalogue
# has near-duplicate flags, plus "unreviewed".
FILTERS = (None, *quality.ALL_REASONS, "unreviewed")
# The reason duplicates.py writes: the film position of the face the group keeps.
DUPLICATE_OF = re.compile(r"duplicate: of frame (\d+)(?: slot (\d+))?")


@dataclass
class FaceItem:
    """One face in the review grid."""

    id: int
    film: str
    frame: int
    slot: int
    pts: float | None
    source: str | None
    crop_path: str
    measures: dict[str, float]
    reasons: list[str]
    verdict: str | None
    outlier: float | None

    @property
    def keys(self) -> list[str]:
        return quality.reason_keys(self.reasons)

    @property
    def flagged(self) -> bool:
        """A rule says discard (a profile alone does not)."""
        return not quality.passes(self.reasons)

    @property
    def duplicate_of(self) -> tuple[str, int, int] | None:
        """(film, frame, slot) of the face whose group this face folds into, if any."""
        for reason in self.reasons:
            match = DUPLICATE_OF.fullmatch(reason)
            if match:
                return self.film, int(match[1]), int(match[2] or 0)
        return None

    @property
    def timecode(self) -> str:
        if self.pts is None:
            return self.source or f"#{self.frame}"
        minutes, seconds = divmod(self.pts, 60)
        hours, minutes = divmod(int(minutes), 60)
        return f"{hours:d}:{minutes:02d}:{seconds:05.2f}"


def _reasons(stored: list[str], view: decisions.FaceView) -> list[str]:
    # The clustering's "not recognised" judged a face against the identity it was put in; a face
    # a person moved sits where they recognised it.
    return recognised.without_verdict(stored) if view.placed else stored


def load_faces(conn: sqlite3.Connection, identity: int) -> list[FaceItem]:
    """The faces an identity holds now (decisions applied), with their latest verdicts."""
    views = [v for v in decisions.view(conn).values() if v.identity == identity]
    if not views:
        return []
    by_id = {v.face_id: v for v in views}
    marks = ",".join("?" * len(by_id))
    rows = conn.execute(
        f"""SELECT x.id, f.slug, x.frame, x.slot, x.pts, x.source, x.crop_path, x.measures,
            x.reasons FROM faces x JOIN films f ON f.id = x.film_id
            WHERE x.id IN ({marks})""",
        list(by_id),
    ).fetchall()
    return [
        FaceItem(
            id=r[0],
            film=r[1],
            frame=r[2],
            slot=r[3],
            pts=r[4],
            source=r[5],
            crop_path=r[6],
            measures=json.loads(r[7]),
            reasons=_reasons(json.loads(r[8]), by_id[r[0]]),
            verdict=by_id[r[0]].verdict,
            outlier=by_id[r[0]].outlier,
        )
        for r in rows
    ]


@dataclass
class Review:
    """One identity under review: the visible faces, the cursor, the selection, the decisions.

    Near-duplicates fold into the face their group keeps (`fold`); a group can be expanded."""

    identity: int
    sort: str = "outliers"
    filter: str | None = None
    cursor: int = 0
    selected: set[int] = field(default_factory=set)
    faces: list[FaceItem] = field(default_factory=list)
    visible: list[FaceItem] = field(default_factory=list)
    fold: bool = True
    expanded: set[int] = field(default_factory=set)  # group leaders shown with their duplicates
    members: dict[int, list[FaceItem]] = field(default_factory=dict)  # leader id → duplicates

    @classmethod
    def load(cls, conn: sqlite3.Connection, identity: int) -> Review:
        """The identity's review with its faces read."""
        review = cls(identity)
        review.reload(conn)
        return review

    def reload(self, conn: sqlite3.Connection) -> None:
        """Read the identity's faces again (after undo, merge, reassign…)."""
        self.faces = load_faces(conn, self.identity)
        self.selected &= {f.id for f in self.faces}
        at = {(f.film, f.frame, f.slot): f.id for f in self.faces}
        self.members = {}
        for face in self.faces:
            leader = at.get(face.duplicate_of)  # None: the group's best face is elsewhere
            if leader is not None and leader != face.id:
                self.members.setdefault(leader, []).append(face)
        self.expanded &= set(self.members)
        self.arrange()

    def arrange(self) -> None:
        """Apply the filter and the sort; the cursor stays on the same face when it can."""
        current = self.current.id if self.visible and self.current else None
        shown = [f for f in self.faces if self._passes_filter(f)]
        if self.sort == "outliers":
            shown.sort(key=lambda f: (-(f.outlier or 0.0), f.id))
        elif self.sort == "quality":
            shown.sort(key=lambda f: (-f.measures.get("sharpness", 0.0), f.id))
        else:
            shown.sort(key=lambda f: (f.film, f.frame, f.id))
        self.visible = self._folded(shown)
        ids = [f.id for f in self.visible]
        self.cursor = ids.index(current) if current in ids else min(self.cursor, len(ids) - 1)
        self.cursor = max(self.cursor, 0)

    @property
    def _folding(self) -> bool:
        # A reason's filter shows every face it matches, so what `X` discards is what is shown.
        return self.fold and self.filter in (None, "unreviewed")

    def _folded(self, shown: list[FaceItem]) -> list[FaceItem]:
        """Duplicates behind their shown leader; an expanded group's right after it."""
        if not self._folding:
            return shown
        ids = {f.id for f in shown}
        hidden = {m.id for lead, group in self.members.items() if lead in ids for m in group}
        out = []
        for face in shown:
            if face.id in hidden:
                continue
            out.append(face)
            if face.id in self.expanded:
                out.extend(m for m in self.members[face.id] if m.id in ids)
        return out

    def folded_under(self, face: FaceItem) -> int:
        """How many duplicates fold into this face (0 when it leads no group or is expanded)."""
        if not self._folding or face.id in self.expanded:
            return 0
        return len(self.members.get(face.id, ()))

    def leader(self, face: FaceItem) -> int:
        """The id of the face a group is shown under: its leader, or the face itself."""
        for lead, group in self.members.items():
            if any(m.id == face.id for m in group):
                return lead
        return face.id

    def toggle_group(self) -> int:
        """Expand or fold the group under the cursor; the number of faces it holds besides."""
        face = self.current
        if face is None:
            return 0
        lead = self.leader(face)
        if lead not in self.members:
            return 0
        self.expanded ^= {lead}
        self.arrange()
        if lead not in self.expanded:  # the cursor stays on the group's face
            self.cursor = [f.id for f in self.visible].index(lead)
        return len(self.members[lead])

    def toggle_fold(self) -> bool:
        self.fold = not self.fold
        self.arrange()
        return self.fold

    def _passes_filter(self, face: FaceItem) -> bool:
        if self.filter is None:
            return True
        if self.filter == "unreviewed":
            return face.verdict is None
        return self.filter in face.keys

    @property
    def current(self) -> FaceItem | None:
        return self.visible[self.cursor] if 0 <= self.cursor < len(self.visible) else None

    def move(self, step: int) -> None:
        if self.visible:
            self.cursor = max(0, min(len(self.visible) - 1, self.cursor + step))

    def cycle_sort(self) -> str:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.arrange()
        return self.sort

    def cycle_filter(self) -> str | None:
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]
        self.arrange()
        return self.filter

    def toggle_select(self) -> None:
        face = self.current
        if face is not None:
            self.selected ^= {face.id}

    def targets(self) -> list[int]:
        """The selection if there is one, else the face under the cursor."""
        if self.selected:
            return sorted(self.selected)
        return [self.current.id] if self.current else []

    def decide(self, conn: sqlite3.Connection, verdict: str) -> list[int]:
        """Keep or discard the targets, then move on so a person can hold a rhythm."""
        faces = self.targets()
        if not faces:
            return []
        (decisions.keep if verdict == "keep" else decisions.discard)(conn, faces)
        for face in self.faces:
            if face.id in faces:
                face.verdict = verdict
        had_selection = bool(self.selected)
        self.selected.clear()
        if self.filter == "unreviewed":
            self.arrange()
        elif not had_selection:
            self.move(1)
        return faces

    def reassign(self, conn: sqlite3.Connection, identity: int) -> list[int]:
        faces = self.targets()
        if faces:
            decisions.reassign(conn, faces, identity)
            self.selected.clear()
            self.reload(conn)
        return faces

    def split(self, conn: sqlite3.Connection) -> int | None:
        faces = self.targets()
        if not faces:
            return None
        new = decisions.split(conn, faces)
        self.selected.clear()
        self.reload(conn)
        return new

    def merge_into(self, conn: sqlite3.Connection, identity: int) -> None:
        """Merge this identity into another; the review follows it there."""
        decisions.merge(conn, self.identity, identity)
        self.identity = decisions.state(conn).resolve(identity) or identity
        self.reload(conn)

    def flagged(self, reason: str | None = None) -> list[int]:
        """Unreviewed faces of this identity flagged for `reason` (None: for any reason).

        Faces a person decided are left alone: bulk keys act only on the suggestions."""
        return [
            f.id
            for f in self.faces
            if f.verdict is None and (reason in f.keys if reason else f.flagged)
        ]

    def discard_flagged(self, conn: sqlite3.Connection, reason: str | None = None) -> int:
        faces = self.flagged(reason)
        if faces:
            decisions.discard(conn, faces, payload={"bulk": f"flagged {reason or 'any'}"})
            self.reload(conn)
        return len(faces)

    def unflagged(self, faces: list[FaceItem] | None = None) -> list[int]:
        """Unreviewed faces that pass every rule, among `faces` (None: the whole identity)."""
        pool = self.faces if faces is None else faces
        return [f.id for f in pool if f.verdict is None and not f.flagged]

    def keep_unflagged(self, conn: sqlite3.Connection, faces: list[FaceItem] | None = None) -> int:
        """Keep every unreviewed face that passes every rule (one decision, one undo)."""
        ids = self.unflagged(faces)
        if not ids:
            return 0
        decisions.keep(conn, ids, payload={"bulk": "unflagged"})
        chosen = set(ids)
        for face in self.faces:
            if face.id in chosen:
                face.verdict = "keep"
        if self.filter == "unreviewed":
            self.arrange()
        return len(ids)

    def undo(self, conn: sqlite3.Connection) -> decisions.Decision:
        done = decisions.undo(conn)
        self._follow(conn, done)
        return done

    def redo(self, conn: sqlite3.Connection) -> decisions.Decision:
        done = decisions.redo(conn)
        self._follow(conn, done)
        return done

    def _follow(self, conn: sqlite3.Connection, done: decisions.Decision) -> None:
        # Undoing the merge that brought us here goes back to the identity that was merged;
        # otherwise follow merges to where this identity's faces are now.
        state = decisions.state(conn)
        merged_here = done.kind == "merge" and done.target_id == self.identity
        if merged_here and state.resolve(done.identity_id) == done.identity_id:
            self.identity = done.identity_id
        resolved = state.resolve(self.identity)
        self.identity = resolved if resolved is not None else self.identity
        self.reload(conn)
        if done.faces:
            ids = [f.id for f in self.visible]
            hits = [ids.index(f) for f in done.faces if f in ids]
            if hits:
                self.cursor = min(hits)
