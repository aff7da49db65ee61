"""Keys to truth: how many keys a person types per 100 faces to review a film whose truth is known,
and whether the decisions they reach agree with it.

The film (built once in bench/out) cuts between four real people from package photos, each in
three kinds of shot: *varied* (hard cuts between lightings: every face a different picture, keep
all), *still* (a held shot sampled ten times: keep one, the rest are redundant) and *bad*
(defocus, mild defocus, a hand over nose and mouth, a 45° tilt, cut by the frame edge, too
small: discard all). It is extracted and
clustered by the real pipeline. A scripted person who knows the truth then reviews it in the app
through Pilot the way the README says: fix the identities, then in each identity touch only the
faces the suggestions get wrong (`d`, `k`, `g` to open a folded group, `r` to move a face), and
accept the rest with `ctrl+k` and `X`. Every key goes through the app and is counted by it.

    python bench/review.py [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner
from rich.console import Console
from rich.table import Table
from textual.pilot import Pilot

from reelface import synth, workspace
from reelface.catalogue import open_catalogue as connect
from reelface.cli import main as cli_main
from reelface.identity import decisions, identify
from reelface.synth.demo import T1_FACES
from reelface.tui.app import ReelfaceApp
from reelface.tui.graphics.detect import Graphics
from reelface.tui.model import FaceItem
from reelface.tui.screens.identities import IdentitiesScreen
from reelface.tui.screens.review import ReviewScreen

OUT = Path(__file__).parent / "out" / "review"
SIZE = (1280, 720)
INTERVAL = 10  # the workspace default: one sample per 10 frames
SCREEN = (160, 48)
# Shots per person: (kind, count, frames). Varied shots are 4 samples long (one per lighting),
# still and bad shots 10.
PLAN = (("varied", 5, 40), ("still", 5, 100), ("bad", 3, 100))
# Bad shots take turns: the plain faults, and two a person sees at once that rules may miss
# (a mild defocus, a hand over nose and mouth).
BAD = ("blur", "tilt", "edge", "small", "soft", "covered")


@dataclass(frozen=True)
class Truth:
    """What a face is: whose, which shot, and the shot's kind."""

    person: int
    shot: int
    kind: str  # varied, still, bad (or "none": no face there)
    fault: str = ""  # a bad shot's: blur, tilt, edge, small, soft, covered


def cast() -> list[tuple[np.ndarray, np.ndarray]]:
    """Four people, each photo cut to ±3 eye distances so no neighbour enters the frame."""
    photos, marks = synth.package_photos(), synth.package_landmarks()
    t1 = synth.load_photo(photos["insightface_t1"])
    astronaut = synth.load_photo(photos["skimage_astronaut"])
    chosen = [(astronaut, marks["skimage_astronaut"][0])]
    chosen += [(t1, marks["insightface_t1"][face]) for face in T1_FACES]
    people = []
    for photo, points in chosen:
        iod = float(np.linalg.norm(points[1] - points[0]))
        centre = (points[0] + points[1]) / 2
        x1, y1 = np.maximum(0, centre - 3 * iod).astype(int)
        x2, y2 = (centre + 3 * iod).astype(int)
        people.append((np.ascontiguousarray(photo[y1:y2, x1:x2]), (points - [x1, y1])[None]))
    return people


def covered_photo(photo: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The photo with a hand-coloured soft ellipse over nose and mouth."""
    iod = float(np.linalg.norm(points[1] - points[0]))
    centre = (points[2] + (points[3] + points[4]) / 2) / 2
    mask = np.zeros(photo.shape[:2], np.float32)
    axes = (int(1.1 * iod), int(0.7 * iod))
    cv2.ellipse(mask, tuple(int(v) for v in centre), axes, 0, 0, 360, 1, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 3)[..., None]
    hand = np.array([196, 150, 120], np.float32)
    return (photo * (1 - mask) + hand * mask).astype(np.uint8)


def shots() -> list[synth.Shot]:
    """The film: the people take turns, shot kind by shot kind, so clustering sees them mixed."""
    P = synth.Pose
    cx, cy, eye = SIZE[0] / 2, SIZE[1] * 0.45, 110.0
    out: list[synth.Shot] = []
    people = cast()
    bad = 0
    for kind, count, frames in PLAN:
        for take in range(count):
            for person, (photo, points) in enumerate(people):
                label = f"{kind} {person}"

                def shot(start: synth.Pose, end: synth.Pose, **kw) -> synth.Shot:
                    return synth.Shot(photo, points, 0, frames, start, end, label=label, **kw)  # noqa: B023

                if kind == "varied":
                    # One lighting per sample: 90° apart, so no two samples are the same picture.
                    turn = 270.0 * (frames - 1) / (frames - INTERVAL)
                    offset = 45.0 * take
                    at = P((cx - 80 + 40 * take, cy), eye)
                    out.append(shot(at, at, light=0.6, light_from=(offset, offset + turn)))
                elif kind == "still":
                    at = P((cx + 120 - 60 * take, cy + 10), eye * (0.9 + 0.05 * take))
                    out.append(shot(at, at))
                else:
                    what = BAD[bad % len(BAD)]
                    bad += 1
                    label = f"{kind} {person} {what}"
                    if what == "blur":
                        out.append(shot(P((cx, cy), eye), P((cx, cy), eye), blur=6.0))
                    elif what == "tilt":
                        out.append(shot(P((cx, cy), eye, 44.0), P((cx, cy), eye, 50.0)))
                    elif what == "edge":
                        out.append(shot(P((eye * 0.1, cy), eye), P((eye * 0.3, cy), eye)))
                    elif what == "small":
                        out.append(shot(P((cx, cy), 24.0), P((cx, cy), 26.0)))
                    elif what == "soft":
                        out.append(shot(P((cx, cy), eye), P((cx, cy), eye), blur=2.0))
                    else:
                        covered = synth.Shot(
                            covered_photo(photo, points[0]),
                            points,
                            0,
                            frames,
                            P((cx, cy), eye),
                            P((cx, cy), eye * 1.05),
                            label=label,
                        )
                        out.append(covered)
    return out


def build(root: Path) -> Path:
    """The film, extracted at 256 px and clustered into a fresh workspace; the film's path."""
    film = root.parent / "cast.mp4"
    if not film.exists():
        synth.make_film(film, shots(), size=SIZE, fps=25)
    runner = CliRunner()
    for args in (["extract", str(film), "--size", "256"], ["cluster", "--all"]):
        result = runner.invoke(cli_main, ["-w", str(root), *args])
        assert result.exit_code == 0, result.output
    return film


def truths(root: Path, film: Path) -> dict[int, Truth]:
    """Face id → truth, from the film's truth file (frame → shot) and each shot's label."""
    meta, frames = synth.read_truth(film)
    labels = meta["shot_labels"]
    conn = connect(root / "catalogue.sqlite")
    try:
        rows = conn.execute("SELECT id, frame, landmarks FROM faces").fetchall()
    finally:
        conn.close()
    out = {}
    for face, frame, landmarks in rows:
        truth = frames[frame]
        kind, person, *fault = labels[truth.shot].split()
        # A detection far from the followed face is nobody in the cast: discard it.
        where = np.asarray(json.loads(landmarks)).reshape(5, 2)
        off = np.linalg.norm(where - truth.faces[0].landmarks, axis=1).mean()
        iod = np.linalg.norm(truth.faces[0].landmarks[1] - truth.faces[0].landmarks[0])
        kind = kind if off < 0.5 * iod else "none"
        out[face] = Truth(int(person), truth.shot, kind, "".join(fault))
    return out


class Person:
    """The scripted reviewer: knows the truth, sees only what the app shows, types keys."""

    def __init__(self, app: ReelfaceApp, pilot: Pilot, truth: dict[int, Truth]) -> None:
        self.app, self.pilot, self.truth = app, pilot, truth

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)
        await self.settle()

    async def settle(self) -> None:
        """Wait until every worker is done and no screen is still loading."""
        for _ in range(600):
            await self.app.workers.wait_for_complete()
            await self.pilot.pause()
            if not any(getattr(s, "working", lambda: False)() for s in self.app.screen_stack):
                return
        raise TimeoutError("the app kept working")

    async def pick(self, identity: int) -> None:
        """In an identity picker: type the id, Enter."""
        await self.press(*str(identity), "enter")

    # -- identities ------------------------------------------------------------------------------

    def majority(self, members: list[int]) -> int:
        return Counter(self.truth[f].person for f in members).most_common(1)[0][0]

    def owners(self) -> dict[int, int]:
        """Person → the identity holding most of their faces (where the others go)."""
        by_identity = defaultdict(list)
        for face, view in decisions.view(self.app.conn).items():
            if view.identity is not None:
                by_identity[view.identity].append(face)
        count: dict[int, Counter] = defaultdict(Counter)
        for identity, members in by_identity.items():
            for face in members:
                count[self.truth[face].person][identity] += 1
        return {person: c.most_common(1)[0][0] for person, c in count.items()}

    def stray(self, face: int, identity: int, owner_of: dict[int, int]) -> bool:
        """Whether `face`, in `identity`, is a good face of a person another identity holds
        (a bad face is discarded wherever it is)."""
        truth = self.truth[face]
        return truth.kind in ("varied", "still") and owner_of[truth.person] != identity

    def strays(self, identity: int, owner_of: dict[int, int]) -> bool:
        """Whether `identity` holds any stray face."""
        return any(
            v.identity == identity and self.stray(f, identity, owner_of)
            for f, v in decisions.view(self.app.conn).items()
        )

    async def goto_row(self, identity: int) -> None:
        screen = self.app.screen
        assert isinstance(screen, IdentitiesScreen)
        table = screen.query_one("DataTable")
        target = [i.id for i in screen.infos].index(identity)
        step = "down" if target > table.cursor_row else "up"
        await self.press(*[step] * abs(target - table.cursor_row))

    async def merge_identities(self) -> None:
        """Merge every identity whose people are another identity's person into that one."""
        owners = self.owners()
        for info in list(self.app.screen.infos):
            members = [f for f, v in decisions.view(self.app.conn).items() if v.identity == info.id]
            if not members:
                continue
            owner = owners[self.majority(members)]
            if owner != info.id:
                await self.goto_row(info.id)
                await self.press("m")
                await self.pick(owner)

    # -- one identity ----------------------------------------------------------------------------

    @property
    def screen(self) -> ReviewScreen:
        screen = self.app.screen
        assert isinstance(screen, ReviewScreen), screen
        return screen

    async def goto(self, face: FaceItem) -> None:
        """Arrow keys from the cursor to `face`, opening its folded group first if need be."""
        review = self.screen.review
        if face not in review.visible:
            await self.goto(next(f for f in review.visible if f.id == review.leader(face)))
            await self.press("g")
        target = [f.id for f in review.visible].index(face.id)
        await self.press(*path(review.cursor, target, self.screen.columns, len(review.visible)))
        assert review.current is not None and review.current.id == face.id

    def wanted(self, owner_of: dict[int, int]) -> tuple[dict[int, str], list[FaceItem]]:
        """The verdict truth wants for each face here, and the faces that belong elsewhere."""
        review = self.screen.review
        want, away = {}, []
        by_shot: dict[int, list[FaceItem]] = defaultdict(list)
        for face in review.faces:
            truth = self.truth[face.id]
            if self.stray(face.id, review.identity, owner_of):
                away.append(face)
            elif truth.kind == "still":
                by_shot[truth.shot].append(face)
            else:
                want[face.id] = "keep" if truth.kind == "varied" else "discard"
        for faces in by_shot.values():
            # One face of a held shot is enough: the one the suggestions keep, if they keep one.
            suggested = [f for f in faces if not f.flagged]
            keeper = (suggested or sorted(faces, key=lambda f: len(f.reasons)))[0]
            want |= {f.id: "keep" if f is keeper else "discard" for f in faces}
        return want, away

    async def move_away(self, owner_of: dict[int, int]) -> None:
        """Send the faces of other people to their identities: select each person's, reassign."""
        by_owner: dict[int, list[FaceItem]] = defaultdict(list)
        for face in self.wanted(owner_of)[1]:
            by_owner[owner_of[self.truth[face.id].person]].append(face)
        for owner, faces in by_owner.items():
            for face in faces:
                await self.goto(face)
                await self.press("space")
            await self.press("r")
            await self.pick(owner)

    async def review(self, owner_of: dict[int, int]) -> None:
        """Fix what the suggestions get wrong, then accept the rest: ctrl+k, X, y."""
        want, _ = self.wanted(owner_of)
        review = self.screen.review
        for face in [f for f in review.visible if f.id in want] + [
            f for f in review.faces if f not in review.visible and f.id in want
        ]:
            suggested = "discard" if face.flagged else "keep"
            if want[face.id] != suggested and face.verdict is None:
                await self.goto(face)
                await self.press("k" if want[face.id] == "keep" else "d")
        if review.unflagged():
            await self.press("ctrl+k")
        if review.flagged():
            await self.press("X", "y")


def path(here: int, there: int, columns: int, count: int) -> list[str]:
    """The fewest arrow keys from grid index `here` to `there` (left and right run on across
    rows, as in the review grid; up and down keep the column)."""

    def vertical(rows: int) -> list[str]:
        return ["down" if rows > 0 else "up"] * abs(rows)

    def horizontal(steps: int) -> list[str]:
        return ["right" if steps > 0 else "left"] * abs(steps)

    ways = [horizontal(there - here)]
    for row in (there // columns - 1, there // columns, there // columns + 1):
        landing = row * columns + here % columns
        if 0 <= landing < count:
            ways.append(vertical(row - here // columns) + horizontal(there - landing))
    return min(ways, key=len)


async def session(root: Path, truth: dict[int, Truth]) -> dict[str, int]:
    """The whole review, from the dashboard: identities first, then each identity."""
    app = ReelfaceApp(workspace.Workspace(root), Graphics("halfblock"))
    async with app.run_test(size=SCREEN) as pilot:
        person = Person(app, pilot, truth)
        await person.settle()
        await person.press("i")
        await person.merge_identities()
        owner_of = person.owners()
        # Faces in another person's identity are moved first, so each is reviewed where it ends.
        for identity in sorted(set(owner_of.values())):
            if person.strays(identity, owner_of):
                await person.goto_row(identity)
                await person.press("enter")
                await person.move_away(owner_of)
                await person.press("escape")
        for identity in sorted(set(owner_of.values())):
            await person.goto_row(identity)
            await person.press("enter")
            await person.review(owner_of)
            await person.press("escape")
        return {"keys": app.keystrokes, "identities": len(owner_of)}


def agreement(root: Path, truth: dict[int, Truth]) -> dict[str, int]:
    """How many decisions agree with the truth, counted from the catalogue."""
    conn = connect(root / "catalogue.sqlite")
    try:
        view = decisions.view(conn)
        identities = identify.identities(conn)
    finally:
        conn.close()
    right = wrong = undecided = 0
    kept_per_still: Counter = Counter()
    for face, v in view.items():
        t = truth[face]
        if v.verdict is None:
            undecided += 1
            continue
        if t.kind == "still":
            kept_per_still[t.shot] += v.verdict == "keep"
            continue
        right += v.verdict == ("keep" if t.kind == "varied" else "discard")
        wrong += v.verdict != ("keep" if t.kind == "varied" else "discard")
    stills = {t.shot for t in truth.values() if t.kind == "still"}
    right += sum(
        sum(1 for f, t in truth.items() if t.shot == s) for s in stills if kept_per_still[s] == 1
    )
    wrong += sum(
        sum(1 for f, t in truth.items() if t.shot == s) for s in stills if kept_per_still[s] != 1
    )
    people_of = defaultdict(set)
    for face, v in view.items():
        if truth[face].kind != "none" and v.verdict == "keep":
            people_of[v.identity].add(truth[face].person)
    mixed = sum(len(p) > 1 for p in people_of.values())
    persons = Counter(next(iter(p)) for p in people_of.values() if len(p) == 1)
    return {
        "right": right,
        "wrong": wrong,
        "undecided": undecided,
        "mixed identities": mixed,
        "people split": sum(n > 1 for n in persons.values()),
        "identities": len([i for i in identities if i.faces]),
    }


def suggestions(truth: dict[int, Truth], root: Path) -> Counter:
    """Where the suggestions disagree with the truth, before any review (by kind of fault)."""
    conn = connect(root / "catalogue.sqlite")
    try:
        rows = dict(conn.execute("SELECT id, passed FROM faces").fetchall())
    finally:
        conn.close()
    faults: Counter = Counter()
    passed_in: Counter = Counter()
    for face, t in truth.items():
        if t.kind == "varied" and not rows[face]:
            faults["good faces flagged"] += 1
        elif t.kind in ("bad", "none") and rows[face]:
            faults[f"{t.fault or 'no-one'} faces passed"] += 1
        elif t.kind == "still":
            passed_in[t.shot] += bool(rows[face])
    faults["held shots not kept once"] = sum(n != 1 for n in passed_in.values())
    return +faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="extract and cluster again")
    args = parser.parse_args()
    root = OUT / "ws"
    if args.rebuild:
        shutil.rmtree(OUT, ignore_errors=True)
    started = time.perf_counter()
    if not (root / "catalogue.sqlite").exists():
        OUT.mkdir(parents=True, exist_ok=True)
        build(root)
    film = OUT / "cast.mp4"
    built = time.perf_counter() - started
    scratch = Path(tempfile.mkdtemp()) / "ws"  # the review's decisions go to a copy
    shutil.copytree(root, scratch)
    try:
        truth = truths(scratch, film)
        faults = suggestions(truth, scratch)
        started = time.perf_counter()
        keys = asyncio.run(session(scratch, truth))
        took = time.perf_counter() - started
        result = agreement(scratch, truth)
    finally:
        shutil.rmtree(scratch.parent, ignore_errors=True)
    faces = len(truth)
    kinds = Counter(t.kind for t in truth.values())
    bad = Counter(t.fault for t in truth.values() if t.kind == "bad")
    console = Console(width=120)
    table = Table(title=f"review of a {faces}-face film whose truth is known (this machine)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("faces (varied / still / bad / no one)",
         f"{kinds['varied']} / {kinds['still']} / {kinds['bad']} / {kinds['none']}"),
        ("bad faces found, by fault", ", ".join(f"{n} {k}" for k, n in sorted(bad.items()))),
        ("suggestions wrong before review", ", ".join(f"{n} {k}" for k, n in sorted(faults.items()))
         or "none"),
        ("identities after review (people)", f"{result['identities']} ({keys['identities']})"),
        ("keys typed", str(keys["keys"])),
        ("keys per 100 faces", f"{100 * keys['keys'] / faces:.1f}"),
        ("decisions agreeing with the truth", f"{result['right']} / {faces}"),
        ("wrong / undecided", f"{result['wrong']} / {result['undecided']}"),
        ("identities holding two people / people split", f"{result['mixed identities']} / "
         f"{result['people split']}"),
        ("review time (Pilot, headless)", f"{took:.1f} s"),
    ]  # fmt: skip
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if built > 1:
        console.print(f"(film built, extracted and clustered in {built:.0f} s)")
    console.print("target: ≤ 15 keys per 100 faces, every decision right")


if __name__ == "__main__":
    main()
