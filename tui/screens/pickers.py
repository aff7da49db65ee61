"""Small modal dialogs: pick an identity (fuzzy), type a name, confirm an action."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from reelface.identity import identify

from ..background import BackgroundScreen

NEW = -1  # the option that means "a new identity"


@dataclass(frozen=True)
class Choice:
    identity: int
    label: str


def choices_from(infos: Iterable[identify.IdentityInfo], exclude: int) -> list[Choice]:
    """Every identity but `exclude`, labelled with its id, name, face count and films."""
    return [
        Choice(
            info.id, f"{info.id} {info.name or ''} ({info.faces} faces, {', '.join(info.films)})"
        )
        for info in infos
        if info.id != exclude
    ]


def other_identities(exclude: int) -> Callable[[sqlite3.Connection], list[Choice]]:
    """A reader of the choices (for a worker): every identity but `exclude`, as it is now."""
    return lambda conn: choices_from(identify.identities(conn), exclude)


def fuzzy(query: str, text: str) -> bool:
    """Every character of the query appears in the text, in order (case-insensitive)."""
    text = text.lower()
    position = 0
    for char in query.lower():
        position = text.find(char, position) + 1
        if not position:
            return False
    return True


class IdentityPicker(BackgroundScreen, ModalScreen[int | None]):
    """Type to filter identities; Enter picks, Esc cancels. Returns an id, NEW or None.

    Given a reader instead of a list, it reads the choices in a worker; keys typed meanwhile
    (the id after `r` in the review) wait for them."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel")]

    def __init__(
        self,
        title: str,
        choices: list[Choice] | Callable[[sqlite3.Connection], list[Choice]],
        allow_new: bool = True,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.choices = [] if callable(choices) else choices
        self.read_choices = choices if callable(choices) else None
        self.allow_new = allow_new

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(placeholder="type to filter, Enter to pick", id="query")
            yield OptionList(id="options")

    def on_mount(self) -> None:
        if self.read_choices:
            self.query_one(Label).update(f"{self.title_text} [dim](loading identities…)[/]")
            self.background(self.read_choices, self._loaded, hold_keys=True)
        self._fill("")
        self.query_one(Input).focus()

    def _loaded(self, choices: list[Choice]) -> None:
        self.choices = choices
        self.query_one(Label).update(self.title_text)
        self._fill(self.query_one(Input).value)

    def _fill(self, query: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        if self.allow_new:
            options.add_option(Option("+ a new identity", id=str(NEW)))
        # An exact id first, then ids and names that start with the query, then fuzzy matches:
        # typing "4" must pick identity 4, not the first label with a 4 in its film name.
        query = query.strip()
        matches = [c for c in self.choices if fuzzy(query, c.label)]
        matches.sort(key=lambda c: (str(c.identity) != query, not c.label.startswith(query)))
        for choice in matches:
            options.add_option(Option(choice.label, id=str(choice.identity)))
        if options.option_count:
            # While typing, the best match rather than "new identity" is under the cursor.
            skip_new = self.allow_new and query and options.option_count > 1
            options.highlighted = 1 if skip_new else 0

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return
        self.dismiss(int(options.get_option_at_index(options.highlighted).id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id))

    def on_key(self, event) -> None:
        # Up and down move through the list while typing stays in the input.
        if event.key in ("up", "down"):
            options = self.query_one(OptionList)
            if options.option_count:
                current = options.highlighted or 0
                step = 1 if event.key == "down" else -1
                options.highlighted = max(0, min(options.option_count - 1, current + step))
            event.stop()

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextPrompt(ModalScreen[str | None]):
    """One line of text; Enter accepts, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(value=self.value)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """A yes/no question: y confirms, n or Esc declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Label("[b]y[/] yes   [b]n[/] no")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
