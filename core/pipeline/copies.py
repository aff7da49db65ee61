"""Copies of one film in the catalogue (a truncated download and the full file, a remux): found by
their first packets when one is extracted, the shorter superseded by the longer, with a note."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from reelface import catalogue
from reelface.identity import decisions
from reelface.pipeline import decode

WHO = "supersede"  # the decisions' author when a person's verdicts move to the longer copy
# Two films of one studio may open on the same bit-exact logo; a copy also agrees on its header's
# duration (a truncated Matroska file keeps it) and, once both are extracted, on its faces.
DURATION_SLACK = 1.0  # seconds
TWIN_SHARE = 0.9  # of the shorter copy's faces found, identical, in the longer one


def _same_length(a: sqlite3.Row, b: sqlite3.Row) -> bool:
    if a["duration"] is None or b["duration"] is None:
        return True
    return abs(a["duration"] - b["duration"]) <= DURATION_SLACK


def _alike(conn: sqlite3.Connection, film_id: int, other: sqlite3.Row, longer: bool) -> bool:
    """Whether the shorter of the two films holds the longer's faces, picture for picture."""
    short, long = (film_id, int(other["id"])) if longer else (int(other["id"]), film_id)
    return catalogue.twin_share(conn, short, long) >= TWIN_SHARE


def settle(conn: sqlite3.Connection, film_id: int, reached: int | None, notes: list[str]) -> bool:
    """Supersede the shorter of this film and its copies, saying so in `notes`; True if this one.

    Before extraction (`reached` None) only a finished copy of the same header duration counts:
    this film is then superseded by it and need not be extracted. After it, `reached` (frames
    decoded) is compared with each copy's, and the shorter's faces must be the longer's.
    """
    for row in catalogue.unfingerprinted(conn):  # films of a catalogue older than fingerprints
        if Path(row["path"]).is_file():
            catalogue.set_fingerprint(conn, row["id"], decode.fingerprint(Path(row["path"])))
    mine = catalogue.film_by_ref(conn, str(film_id))
    copies = catalogue.same_video(conn, film_id, done_only=reached is None)
    if reached is None:
        copies = longer = [r for r in copies if _same_length(mine, r)]
    else:
        longer = [r for r in copies if r["last_frame"] + 1 >= reached]
        copies = [r for r in copies if _alike(conn, film_id, r, r in longer)]
        longer = [r for r in longer if r in copies]
    if longer:
        keep = max(longer, key=lambda r: r["last_frame"])
        catalogue.supersede(conn, film_id, int(keep["id"]), {}, WHO)
        done = ", not extracted" if reached is None else ""
        notes.append(
            f"same video as film {keep['id']} ({keep['path']}) up to where this one ends: "
            f"superseded by it{done}; `reelface films replace {keep['id']} {film_id}` uses "
            "this one instead"
        )
        return True
    verdicts = decisions.state(conn).verdict if copies else {}
    for old in copies:
        carried = catalogue.supersede(conn, int(old["id"]), film_id, verdicts, WHO)
        notes.append(
            f"film {old['id']} ({old['slug']}) is the start of this one and is superseded: its "
            f"faces are left out of export, {carried} keep/discard decisions carried over; "
            f"`reelface films remove {old['id']}` deletes it"
        )
    return False
