"""The review grid of one identity: thumbnails, a cursor and single-key decisions."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from reelface.identity import decisions

from ..model import Review
from ..widgets.face_grid import FaceGrid
from .pickers import NEW, Choice, Confirm, IdentityPicker


class ReviewScreen(Screen):
    """Keys act on the selection if there is one, else on the face under the cursor; the faces
    load in a worker, and until then the app holds the keys typed for this screen."""

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
        Binding("X", "discard_flagged", "Discard flagged", id="review.discard_flagged"),
        Binding("enter", "detail", "Detail", id="review.detail"),
        Binding("escape", "app.pop_screen", "Back", id="review.back"),
    ]
    DEFAULT_CSS = """
    ReviewScreen #status { height: 1; background: $panel; }
    """

    def __init__(self, identity: int) -> None:
        super().__init__()
        self.identity = identity
        self.review: Review | None = None
        self.loading_data = True  # read by the app: keys wait while this is set
        self.first = 0  # index in review.visible of the first face on the page
        self.message = ""

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield FaceGrid(self._pixels, id="grid")
        yield Footer()

    def _pixels(self, face):
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
        self.load_review()

    @work(thread=True, exclusive=True, group="review")
    def load_review(self) -> None:
        review = Review(self.app.conn, self.identity)  # reads every face of the identity
        self.app.call_from_thread(self._loaded, review)

    def _loaded(self, review: Review) -> None:
        from ..app import ScreenReady

        self.review = review
        self.loading_data = False
        if self.is_attached:  # a screen closed while loading has nothing to draw
            self.show_page()
            self.refresh_bindings()
        self.app.post_message(ScreenReady(self))

    def check_action(self, action: str, parameters: tuple[Any, ...]) -> bool | None:
        # The command palette reaches actions too; while loading they show, greyed out.
        return True if self.review is not None else None

    def on_resize(self) -> None:
        self.show_page()

    # -- drawing ---------------------------------------------------------------------------------

    def show_page(self) -> None:
        """Point the grid at the cursor's page; missing pictures come from a loader thread."""
        review = self.review
        if review is None:
            return
        size = self.page_size
        self.first = (review.cursor // size) * size
        page = review.visible[self.first : self.first + size]
        self.grid.show(page, review.cursor - self.first, review.selected)
        self.update_status()
        missing = [f.crop_path for f in page if self.app.thumbs.cached(f.crop_path) is None]
        upcoming = [f.crop_path for f in review.visible[self.first + size : self.first + 2 * size]]
        if missing or upcoming:
            self.load_thumbs(missing, upcoming)

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
            f"[b]identity {review.identity}[/] {where} │ kept {counts['keep']} "
            f"discarded {counts['discard']} unreviewed {counts[None]} │ sort {review.sort} "
            f"│ filter {review.filter or 'all'}{detail}"
            + (f" │ [yellow]{self.message}[/]" if self.message else "")
        )

    @work(thread=True, exclusive=True, group="thumbs")
    def load_thumbs(self, needed: list[str], upcoming: list[str]) -> None:
        for path in needed:
            self.app.thumbs.load(path)
        if needed:
            self.app.call_from_thread(self.grid.refresh)
        for path in upcoming:
            self.app.thumbs.load(path)

    # -- actions ---------------------------------------------------------------------------------

    def _after(self, message: str = "") -> None:
        self.message = message
        self.show_page()

    def action_move(self, step: int) -> None:
        self.review.move(step)
        self._after()

    def action_move_row(self, step: int) -> None:
        self.action_move(step * self.columns)

    def action_page(self, step: int) -> None:
        self.action_move(step * self.page_size)

    def action_decide(self, verdict: str) -> None:
        faces = self.review.decide(verdict)
        self._after(f"{verdict} {len(faces)} face(s)" if faces else "")

    def action_select(self) -> None:
        self.review.toggle_select()
        self._after(f"{len(self.review.selected)} selected")

    def _choices(self) -> list[Choice]:
        from reelface.identity import identify

        return [
            Choice(info.id, f"{info.id} {info.name or ''} ({info.faces} faces, {films})")
            for info in identify.identities(self.review.conn)
            if info.id != self.review.identity
            for films in [", ".join(info.films)]
        ]

    def action_reassign(self) -> None:
        if not self.review.targets():
            return

        def done(choice: int | None) -> None:
            if choice is None:
                return
            if choice == NEW:
                new = self.review.split()
                self.message = f"split into new identity {new}"
            else:
                faces = self.review.reassign(choice)
                self.message = f"{len(faces)} face(s) → identity {choice}"
            self.show_page()

        self.app.push_screen(IdentityPicker("Reassign to…", self._choices()), done)

    def action_split(self) -> None:
        new = self.review.split()
        if new is not None:
            self.message = f"split into new identity {new}"
            self.show_page()

    def action_merge(self) -> None:
        def done(choice: int | None) -> None:
            if choice is None or choice == NEW:
                return
            old = self.review.identity
            self.review.merge_into(choice)
            self.message = f"identity {old} merged into {self.review.identity} (u undoes)"
            self.show_page()

        title = f"Merge identity {self.review.identity} into…"
        self.app.push_screen(IdentityPicker(title, self._choices(), allow_new=False), done)

    def _history_step(self, step) -> None:
        try:
            done = step()
        except decisions.DecisionError as error:
            self.message = str(error)
            self.update_status()
            return
        self.message = f"{'redid' if step == self.review.redo else 'undid'} {done.kind}"
        self.show_page()

    def action_undo(self) -> None:
        self._history_step(self.review.undo)

    def action_redo(self) -> None:
        self._history_step(self.review.redo)

    def action_filter(self) -> None:
        shown = self.review.cycle_filter()
        self.message = f"showing {shown or 'all'}"
        self.show_page()

    def action_sort(self) -> None:
        self.message = f"sorted by {self.review.cycle_sort()}"
        self.show_page()

    def action_discard_flagged(self) -> None:
        reason = self.review.filter
        if reason in (None, "unreviewed"):
            self.message = "choose a reason with f first"
            self.update_status()
            return
        count = len(self.review.flagged(reason))
        if not count:
            self.message = f"nothing flagged {reason} to discard"
            self.update_status()
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.message = f"discarded {self.review.discard_flagged(reason)} {reason} face(s)"
                self.show_page()

        question = f"Discard all {count} faces flagged {reason} in identity {self.review.identity}?"
        self.app.push_screen(Confirm(question), done)

    def action_detail(self) -> None:
        from .detail import FaceDetail

        if self.review.current:
            self.app.push_screen(FaceDetail(self.review.current))

    def on_screen_resume(self) -> None:
        self.show_page()
