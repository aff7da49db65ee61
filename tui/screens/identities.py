"""Every identity with its counts, films, purity and link suggestions; Enter reviews one."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from reelface.identity import decisions, identify

from ..background import BackgroundScreen
from .pickers import IdentityPicker, TextPrompt, choices_from


class IdentitiesScreen(BackgroundScreen):
    """The identities are read in a worker, on opening, on every return here and after each
    change; keys typed meanwhile wait, as they act on the row under the cursor."""

    BINDINGS = [
        # Priority: the table would take Enter and ask for the review one message later, after
        # the keys typed next had already gone to this screen; now the review is on top first.
        Binding("enter", "review", "Review", priority=True, id="identities.review"),
        Binding("n", "rename", "Name", id="identities.rename"),
        Binding("m", "merge", "Merge into…", id="identities.merge"),
        Binding("a", "accept_link", "Accept link", id="identities.accept"),
        Binding("x", "reject_link", "Reject link", id="identities.reject"),
        Binding("u", "undo", "Undo", id="identities.undo"),
        Binding("g", "refresh", "Refresh", id="identities.refresh"),
        Binding("escape", "app.pop_screen", "Back", id="identities.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[identify.IdentityInfo] = []

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield DataTable(id="identities", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(
            "id",
            "name",
            "faces",
            "kept",
            "discarded",
            "unreviewed",
            "purity",
            "films",
            "suggested link",
        )
        # Here, not on resume: the app hands keys to a screen once it is mounted.
        self.action_refresh()

    def on_screen_resume(self) -> None:
        if not self.loading_data:  # the first resume comes while the first read runs
            self.action_refresh()

    def action_refresh(self, change: Callable[[sqlite3.Connection], str] | None = None) -> None:
        """Read every identity again in a worker, after `change` (a decision that says what it
        did); the keys typed meanwhile wait for it."""

        def read(conn: sqlite3.Connection) -> tuple[str, list[identify.IdentityInfo]]:
            message = change(conn) if change else ""
            return message, identify.identities(conn)

        self.query_one("#status", Static).update(
            "[b]identities[/] loading… (keys typed now wait for it)"
        )
        self.background(read, self.show, hold_keys=True)

    def show(self, loaded: tuple[str, list[identify.IdentityInfo]]) -> None:
        message, self.infos = loaded
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for info in self.infos:
            link = info.suggestions[0] if info.suggestions else None
            table.add_row(
                str(info.id),
                info.name or "",
                str(info.faces),
                str(info.kept),
                str(info.discarded),
                str(info.faces - info.kept - info.discarded),
                f"{info.mean_similarity:.2f}" if info.mean_similarity is not None else "-",
                ", ".join(info.films),
                f"→ {link[0]} (distance {link[1]:.2f})" if link else "",
                key=str(info.id),
            )
        if self.infos:
            table.move_cursor(row=min(row, len(self.infos) - 1))
        self.query_one("#status", Static).update(f"[b]{len(self.infos)} identities[/]  {message}")

    @property
    def current(self) -> identify.IdentityInfo | None:
        table = self.query_one(DataTable)
        return self.infos[table.cursor_row] if self.infos else None

    def action_review(self) -> None:
        from .review import ReviewScreen

        if self.current:
            self.app.push_screen(ReviewScreen(self.current.id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # A click on the highlighted row selects it: the same request as Enter.
        self.action_review()

    def _decide(self, decide: Callable[[sqlite3.Connection], object], said: str) -> None:
        """Record a decision in the worker that then reads the identities; `said` is shown."""

        def change(conn: sqlite3.Connection) -> str:
            decide(conn)
            return said

        self.action_refresh(change)

    def action_rename(self) -> None:
        info = self.current
        if info is None:
            return

        def done(text: str | None) -> None:
            if text:
                said = f"identity {info.id} is now {text}"
                self._decide(lambda conn: decisions.name(conn, info.id, text), said)

        self.app.push_screen(TextPrompt(f"Name identity {info.id}", info.name or ""), done)

    def action_merge(self) -> None:
        info = self.current
        if info is None:
            return

        def done(choice: int | None) -> None:
            if choice is not None and choice >= 0:
                said = f"merged {info.id} into {choice} (u undoes)"
                self._decide(lambda conn: decisions.merge(conn, info.id, choice), said)

        picker = IdentityPicker(f"Merge {info.id} into…", choices_from(self.infos, info.id), False)
        self.app.push_screen(picker, done)

    def action_accept_link(self) -> None:
        info = self.current
        if info and info.suggestions:
            other = info.suggestions[0][0]
            said = f"linked {info.id} with {other}"
            self._decide(lambda conn: decisions.merge(conn, info.id, other), said)

    def action_reject_link(self) -> None:
        info = self.current
        if info and info.suggestions:
            other = info.suggestions[0][0]
            said = f"{info.id} and {other} are different people"
            self._decide(lambda conn: decisions.reject_link(conn, info.id, other), said)

    def action_undo(self) -> None:
        def undo(conn: sqlite3.Connection) -> str:
            try:
                return f"undid {decisions.undo(conn).kind}"
            except decisions.DecisionError as error:
                return str(error)

        self.action_refresh(undo)
