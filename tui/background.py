"""Screens that read the catalogue (and run subprocesses) in thread workers, never on the UI thread.

A worker computes a plain result and hands it back with `on_ui`, a posted message, so the UI
thread applies it; while work started with `hold_keys` runs, the app keeps the keys typed for the
screen (see `takes_keys` in app.py) and replays them once the screen posts `ScreenReady`.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from textual import on
from textual.message import Message
from textual.screen import Screen

T = TypeVar("T")


class ScreenReady(Message):
    """Posted to the app when a screen can act on keys: the keys held for it are replayed."""

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.screen = screen


class ResultReady(Message, bubble=False):
    """A callback a worker hands to its screen, to run there on the UI thread."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__()
        self.callback = callback


class BackgroundScreen(Screen):
    """A screen whose catalogue work runs in thread workers; a dialog lists it first, as in
    `class Picker(BackgroundScreen, ModalScreen[int])`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holding = 0  # work started with hold_keys and not yet applied
        self._pending: Counter[str] = Counter()  # work by group, not yet applied

    @property
    def loading_data(self) -> bool:
        """Read by the app: keys typed for this screen wait while it is set."""
        return self._holding > 0

    def working(self, group: str | None = None) -> bool:
        """Whether work of `group` (None: any) is running or not yet applied; a periodic read
        skips a beat then, and tests wait for it."""
        pending = self._pending[group] if group else sum(self._pending.values())
        return pending > 0 or any(
            w.node is self and group in (None, w.group) and not w.is_finished for w in self.workers
        )

    def on_ui(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback(*args)` on the UI thread soon; from any thread, without waiting for it.

        Not `call_from_thread`: it waits for the UI, which never answers once the app is closing.
        """
        self.post_message(ResultReady(partial(callback, *args)))

    @on(ResultReady)
    def _run_result(self, message: ResultReady) -> None:
        message.callback()

    def background(
        self,
        work: Callable[[sqlite3.Connection], T],
        then: Callable[[T], None],
        *,
        hold_keys: bool = False,
        group: str = "catalogue",
    ) -> None:
        """Run `work(conn)` in a thread worker, then `then(result)` on the UI thread."""
        if hold_keys:
            self._holding += 1
        self._pending[group] += 1
        self.run_worker(
            partial(self._work, work, then, hold_keys, group), thread=True, group=group, name=group
        )

    def _work(
        self,
        work: Callable[[sqlite3.Connection], T],
        then: Callable[[T], None],
        hold_keys: bool,
        group: str,
    ) -> None:
        with self.app.worker_conn() as conn:
            result = work(conn)
        self.on_ui(self._apply, then, result, hold_keys, group)

    def _apply(self, then: Callable[[T], None], result: T, hold_keys: bool, group: str) -> None:
        self._pending[group] -= 1
        if hold_keys:
            self._holding -= 1
        then(result)  # may start more held work: then the keys wait for that too
        if hold_keys and not self._holding:
            self.refresh_bindings()
            self.app.post_message(ScreenReady(self))
