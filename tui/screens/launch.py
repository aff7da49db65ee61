"""A form that queues an export, training or evaluation job for the daemon."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


def parse(kind: str, values: dict[str, str]) -> dict:
    """Typed job parameters from the form's text fields (empty fields left out)."""
    params: dict = {}
    for key, text in values.items():
        text = text.strip()
        if not text:
            continue
        if key in ("steps", "batch"):
            params[key] = int(text)
        elif key == "reviewed_only":
            params[key] = text.lower() in ("y", "yes", "true", "1")
        elif key == "data":
            params[key] = text.split()
        else:
            params[key] = text
    return params


class LaunchForm(ModalScreen[dict | None]):
    """Tab moves between fields, Enter in the last field queues the job, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="launch.cancel")]

    def __init__(self, kind: str, fields: list[tuple[str, str]]) -> None:
        super().__init__()
        self.kind = kind
        self.fields = fields

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]Queue a {self.kind} job[/]")
            for key, hint in self.fields:
                yield Label(hint)
                yield Input(id=f"field-{key}")
            yield Label("", id="error")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        if event.input is not inputs[-1]:
            inputs[inputs.index(event.input) + 1].focus()
            return
        values = {key: self.query_one(f"#field-{key}", Input).value for key, _ in self.fields}
        try:
            params = parse(self.kind, values)
        except ValueError as error:
            self.query_one("#error", Label).update(f"not a number: {error}")
            return
        self.dismiss(params)

    def action_cancel(self) -> None:
        self.dismiss(None)
