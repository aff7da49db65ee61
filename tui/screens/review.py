"""The review grid of one identity: thumbnails, a cursor and single-key decisions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from reelface.identity import decisions

from ..background import BackgroundScreen
from ..model import FaceItem, Review
from ..widgets.face_grid import IMAGE_HEIGHT, IMAGE_WIDTH, FaceGrid
from .pickers import NEW, Confirm, IdentityPicker, other_identities

TILE_IMAGE = (IMAGE_WIDTH, IMAGE_HEIGHT)
# Seconds of the UI thread that may go to reading and encoding a page's missing pictures: a
# page opened (its keys are held meanwhile; 24 sixels take ~55 ms on 2 shared cores), or a page
# reached by a key (the loader has usually prefetched it).
OPEN_BUDGET, KEY_BUDGET = 0.15, 0.04


class ReviewScreen(BackgroundScreen):
    """Keys act on the selection if there is one, else on the face under the cursor.

    The faces load in a worker, and so does every change that reads them again (reassign, split,
    merge, undo…); meanwhile the worker owns `review` and the app holds the keys typed here. Keep
    and discard, typed in a rhythm, write on the UI thread (one short transaction by face id), so
    each key's face is marked before the next key is handled."""

    BINDINGS = [
        Binding("left", "move(-1)", "←", show=False, id="review.left"),
        Binding("right", "move(1)", "→", show=False, id="review.right"),
        Binding("up", "move_row(-1)", "↑", show=False, id="review.up"),
        Binding("down", "move_row(1)", "↓", show=False, id="review.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="review.pageup"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="review.pagedown"),
        Binding("k", "decide('keep')", "Keep", id="review.keep"),
        Binding("d,x", "decide('discard')", "Discard", id="review.discard"),
        Binding("space", "select", "Select", id="review.select"),
        Binding("r", "reassign", "Reassign", id="review.reassign"),
        Binding("s", "split", "Split off", id="review.split"),
        Binding("m", "merge", "Merge into…", id="review.merge"),
        Binding("u", "undo", "Undo", id="review.undo"),
        Binding("U,ctrl+r", "redo", "Redo", id="review.redo"),
        Binding("f", "filter", "Filter", id="review.filter"),
        Binding("o", "sort", "Sort", id="review.sort"),
        Binding("K", "keep_page", "Keep unflagged (page)", id="review.keep_page"),
        Binding("ctrl+k", "keep_identity", "Keep unflagged (all)", id="review.keep_identity"),
        Binding("X", "discard_flagged", "Discard flagged", id="review.discard_flagged"),
        Binding("g", "group", "Group", id="review.group"),
        Binding("G", "fold", "Fold duplicates", show=False, id="review.fold"),
        Binding("enter", "detail", "Detail", id="review.detail"),
        Binding("escape", "app.pop_screen", "Back", id="review.back"),
    ]

    def __init__(self, identity: int) -> None:
        super().__init__()
        self.identity = identity
        self.review: Review | None = None
        self.first = 0  # index in review.visible of the first face on the page
        self.message = ""

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        hint = self.app.pictures.graphics.hint
        yield Static(hint, id="hint", classes="" if hint else "hidden")
        yield FaceGrid(self._pixels, id="grid")
        yield Footer()

    def _pixels(self, face: FaceItem) -> np.ndarray | None:
        return self.app.thumbs.cached(face.crop_path)

    @property
    def grid(self) -> FaceGrid:
        return self.query_one(FaceGrid)

    @property
    def columns(self) -> int:
        return self.grid.columns

    @property
    def page_size(self) -> int:
        return self.grid.columns * self.grid.rows

    def on_mount(self) -> None:
        self.query_one("#status", Static).update(
            f"[b]identity {self.identity}[/] loading… (keys typed now wait for it)"
        )
        self.background(lambda conn: Review.load(conn, self.identity), self._loaded, hold_keys=True)

    def _loaded(self, review: Review) -> None:
        self.review = review
        self.show_page(OPEN_BUDGET)

    def check_action(self, action: str, parameters: tuple[Any, ...]) -> bool | None:
        # The command palette reaches actions too; while loading they show, greyed out.
        return True if self.review is not None and not self.loading_data else None

    def on_resize(self) -> None:
        self.show_page()

    # -- drawing ---------------------------------------------------------------------------------

    def show_page(self, budget: float = KEY_BUDGET) -> None:
        """Point the grid at the cursor's page, its missing pictures made first (for up to
        `budget` seconds; the rest come from a loader thread), and the next page's prefetched."""
        review = self.review
        if review is None or self.loading_data:  # a worker is changing the review
            return
        size = self.page_size
        self.first = (review.cursor // size) * size
        page = self.page
        folded = {f.id: n for f in page if (n := review.folded_under(f))}
        pictures, thumbs = self.app.pictures, self.app.thumbs
        missing = [
            f.crop_path
            for f in page
            if thumbs.cached(f.crop_path) is None or not pictures.ready(f.crop_path, *TILE_IMAGE)
        ]
        # The page's missing pictures are read and encoded here, for up to `budget`, the rest
        # (and a thumbnail still to be made from its crop) in the loader thread. In a thread
        # they would wait: each numpy or OpenCV call lets go of the GIL, and while the UI thread
        # runs Python (a new screen's first layout, ~100 ms) taking it back waits up to the
        # 5 ms switch interval (24 sixels: 50 ms here, seconds beside a busy thread).
        deadline, later = time.perf_counter() + budget, []
        for path in missing:
            if time.perf_counter() > deadline or not self._load(path, make=False):
                later.append(path)
        self.grid.show(page, review.cursor - self.first, review.selected, folded)
        self.update_status()
        upcoming = [f.crop_path for f in review.visible[self.first + size : self.first + 2 * size]]
        if later or upcoming:
            self.load_thumbs(later, upcoming, self.columns)

    @property
    def page(self) -> list[FaceItem]:
        return self.review.visible[self.first : self.first + self.page_size]

    def update_status(self) -> None:
        review = self.review
        face = review.current
        counts = {"keep": 0, "discard": 0, None: 0}
        for item in review.faces:
            counts[item.verdict] = counts.get(item.verdict, 0) + 1
        where = f"{review.cursor + 1}/{len(review.visible)}" if review.visible else "0/0"
        detail = ""
        if face:
            reasons = "; ".join(face.reasons) or "passes every rule"
            detail = f" │ {face.film} {face.timecode} │ {reasons}"
        self.query_one("#status", Static).update(
            # The tiles' marks: ✔ kept, ✘ discarded, · unreviewed.
            f"[b]identity {review.identity}[/] {where} │ ✔{counts['keep']} "
            f"✘{counts['discard']} ·{counts[None]} │ sort {review.sort} "
            f"│ filter {review.filter or 'all'} │ {self.app.keystrokes} keys{detail}"
            + (f" │ [yellow]{self.message}[/]" if self.message else ""),
            layout=False,  # one fixed line: a layout pass would redraw (and resend) every picture
        )

    @work(thread=True, exclusive=True, group="thumbs")
    def load_thumbs(self, needed: list[str], upcoming: list[str], columns: int = 8) -> None:
        """Read the thumbnails and encode them for the terminal (sixel, PNG), off the UI thread."""
        # Two threads: reading a JPEG, a PNG and much of a sixel's encoding let go of the GIL
        # (24 faces: sixel 49 against 55 ms, kitty 18 against 33 ms, with the UI idle). The grid
        # is redrawn per row of tiles, so the first faces show while the rest are encoded.
        row = max(1, columns)
        with ThreadPoolExecutor(2) as pool:
            for start in range(0, len(needed), row):
                chunk = needed[start : start + row]
                list(pool.map(self._load, chunk))
                self.on_ui(self._redraw, chunk)  # the grid is looked up on the UI thread
        for path in upcoming:
            self._load(path)

    def _redraw(self, paths: list[str]) -> None:
        self.grid.redraw(set(paths))

    def _load(self, path: str, make: bool = True) -> bool:
        """Read the thumbnail (made from its crop unless `make` is False) and encode it."""
        pixels = self.app.thumbs.load(path, make)
        if pixels is not None:
            self.app.pictures.prepare(path, pixels, *TILE_IMAGE)
        return pixels is not None

    # -- actions ---------------------------------------------------------------------------------

    def _after(self, message: str = "") -> None:
        self.message = message
        self.show_page()

    def _change(self, change: Callable[[sqlite3.Connection], str]) -> None:
        """Run a change that reads the faces again in a worker; what it says is shown after."""
        self.query_one("#status", Static).update(
            f"[b]identity {self.review.identity}[/] updating… (keys typed now wait for it)"
        )
        self.background(change, self._after, hold_keys=True)

    def action_move(self, step: int) -> None:
        self.review.move(step)
        self._after()

    def action_move_row(self, step: int) -> None:
        self.action_move(step * self.columns)

    def action_page(self, step: int) -> None:
        self.action_move(step * self.page_size)

    def action_decide(self, verdict: str) -> None:
        faces = self.review.decide(self.app.conn, verdict)
        self._after(f"{verdict} {len(faces)} face(s)" if faces else "")

    def action_select(self) -> None:
        self.review.toggle_select()
        self._after(f"{len(self.review.selected)} selected")

    def _split(self, conn: sqlite3.Connection) -> str:
        return f"split into new identity {self.review.split(conn)}"

    def action_reassign(self) -> None:
        review = self.review
        if not review.targets():
            return

        def done(choice: int | None) -> None:
            if choice == NEW:
                self._change(self._split)
            elif choice is not None:
                self._change(
                    lambda conn: f"{len(review.reassign(conn, choice))} face(s) → identity {choice}"
                )

        picker = IdentityPicker("Reassign to…", other_identities(review.identity))
        self.app.push_screen(picker, done)

    def action_split(self) -> None:
        if self.review.targets():
            self._change(self._split)

    def action_merge(self) -> None:
        review = self.review

        def merge(conn: sqlite3.Connection, choice: int) -> str:
            old = review.identity
            review.merge_into(conn, choice)
            return f"identity {old} merged into {review.identity} (u undoes)"

        def done(choice: int | None) -> None:
            if choice is not None and choice != NEW:
                self._change(lambda conn: merge(conn, choice))

        title = f"Merge identity {review.identity} into…"
        picker = IdentityPicker(title, other_identities(review.identity), allow_new=False)
        self.app.push_screen(picker, done)

    def _history_step(self, redo: bool) -> None:
        review = self.review

        def step(conn: sqlite3.Connection) -> str:
            try:
                done = review.redo(conn) if redo else review.undo(conn)
            except decisions.DecisionError as error:
                return str(error)
            return f"{'redid' if redo else 'undid'} {done.kind}"

        self._change(step)

    def action_undo(self) -> None:
        self._history_step(redo=False)

    def action_redo(self) -> None:
        self._history_step(redo=True)

    def action_filter(self) -> None:
        shown = self.review.cycle_filter()
        self._after(f"showing {shown or 'all'}")

    def action_sort(self) -> None:
        self._after(f"sorted by {self.review.cycle_sort()}")

    def _keep_unflagged(self, faces: list[FaceItem] | None, where: str) -> None:
        count = self.review.keep_unflagged(self.app.conn, faces)
        self._after(f"kept {count} unflagged face(s) {where}" if count else f"none left {where}")

    def action_keep_page(self) -> None:
        self._keep_unflagged(self.page, "on this page")

    def action_keep_identity(self) -> None:
        self._keep_unflagged(None, f"in identity {self.review.identity}")

    def action_discard_flagged(self) -> None:
        """Discard the unreviewed faces flagged for the filter's reason (no filter: any reason)."""
        review = self.review
        reason = None if review.filter == "unreviewed" else review.filter
        named = f"flagged {reason}" if reason else "flagged"
        count = len(review.flagged(reason))
        if not count:
            self.message = f"no unreviewed face {named} to discard"
            self.update_status()
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._change(
                    lambda conn: f"discarded {review.discard_flagged(conn, reason)} {named} face(s)"
                )

        question = (
            f"Discard all {count} unreviewed faces {named} in identity {review.identity}? "
            "(faces you decided stay as they are)"
        )
        self.app.push_screen(Confirm(question), done)

    def action_group(self) -> None:
        review = self.review
        before = review.folded_under(review.current) if review.current else 0
        count = review.toggle_group()
        if not count:
            self._after("no duplicates fold into this face")
        else:
            self._after(f"{'showing' if before else 'folded'} {count} duplicate(s)")

    def action_fold(self) -> None:
        folded = self.review.toggle_fold()
        self._after("duplicates folded into their best face" if folded else "every face shown")

    def action_detail(self) -> None:
        from .detail import FaceDetail

        if self.review.current:
            self.app.push_screen(FaceDetail(self.review.current))

    def on_screen_resume(self) -> None:
        self.show_page()
