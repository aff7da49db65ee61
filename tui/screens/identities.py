"""Every identity with its counts, films, purity and link suggestions; Enter reviews one."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from reelface.identity import decisions, identify

from .pickers import Choice, IdentityPicker, TextPrompt


class IdentitiesScreen(Screen):
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
        self.action_refresh()

    def action_refresh(self, message: str = "") -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        self.infos = identify.identities(self.app.conn)
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

    def action_rename(self) -> None:
        info = self.current
        if info is None:
            return

        def done(text: str | None) -> None:
            if text:
                decisions.name(self.app.conn, info.id, text)
                self.action_refresh(f"identity {info.id} is now {text}")

        self.app.push_screen(TextPrompt(f"Name identity {info.id}", info.name or ""), done)

    def action_merge(self) -> None:
        info = self.current
        if info is None:
            return
        choices = [
            Choice(o.id, f"{o.id}  {o.name or ''}  ({o.faces} faces)")
            for o in self.infos
            if o.id != info.id
        ]

        def done(choice: int | None) -> None:
            if choice is not None and choice >= 0:
                decisions.merge(self.app.conn, info.id, choice)
                self.action_refresh(f"merged {info.id} into {choice} (u undoes)")

        self.app.push_screen(IdentityPicker(f"Merge {info.id} into…", choices, False), done)

    def action_accept_link(self) -> None:
        info = self.current
        if info and info.suggestions:
            other = info.suggestions[0][0]
            decisions.merge(self.app.conn, info.id, other)
            self.action_refresh(f"linked {info.id} with {other}")

    def action_reject_link(self) -> None:
        info = self.current
        if info and info.suggestions:
            other = info.suggestions[0][0]
            decisions.reject_link(self.app.conn, info.id, other)
            self.action_refresh(f"{info.id} and {other} are different people")

    def action_undo(self) -> None:
        try:
            done = decisions.undo(self.app.conn)
        except decisions.DecisionError as error:
            self.action_refresh(str(error))
            return
        self.action_refresh(f"undid {done.kind}")

    def on_screen_resume(self) -> None:
        self.action_refresh()
