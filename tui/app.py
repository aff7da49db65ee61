"""The reelface review app: dashboard, identities, review grid, face detail; keyboard only."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.screen import Screen

from reelface import catalogue
from reelface.workspace import Workspace

from .background import ScreenReady
from .graphics.detect import Graphics
from .graphics.pictures import Pictures
from .screens.dashboard import Dashboard
from .screens.help import HelpScreen
from .thumbcache import ThumbCache


class ActionCommands(Provider):
    """Every binding of the app and of the current screen, in the command palette."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app = self.app
        for screen_name, bindings in app.binding_sections():
            for binding in bindings:
                text = f"{screen_name}: {binding.description or binding.action} ({binding.key})"
                score = matcher.match(text)
                if score > 0:
                    yield Hit(score, matcher.highlight(text), _runner(app, binding.action))


def _runner(app: App, action: str):
    async def run() -> None:
        await app.run_action(action, app.screen)

    return run


def takes_keys(screen: Screen) -> bool:
    """Mounted, and not loading the data its keys act on (BackgroundScreen.loading_data)."""
    return screen.is_mounted and not getattr(screen, "loading_data", False)


class ReelfaceApp(App):
    """One workspace; one catalogue connection for the UI thread and one for the workers."""

    TITLE = "reelface"
    CSS_PATH = "reelface.tcss"  # every screen's and widget's style, in one file
    COMMANDS = App.COMMANDS | {ActionCommands}
    BINDINGS = [
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("D", "dashboard", "Dashboard", id="app.dashboard"),
        Binding("I", "identities", "Identities", id="app.identities"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, workspace: Workspace, graphics: Graphics | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        # Half blocks unless told otherwise: tui/cli.py asks the terminal before the app starts.
        self.pictures = Pictures(graphics)
        # The UI thread's connection serves only the review's keep and discard. Workers share a
        # second one, one worker at a time (worker_conn): statements from two threads on one
        # connection would land inside each other's transactions.
        self.conn = catalogue.open_catalogue(workspace.catalogue_path)
        self._worker_conn = catalogue.open_catalogue(workspace.catalogue_path)
        self._worker_lock = threading.Lock()
        self.thumbs = ThumbCache(workspace.root)
        # Key routing (see on_event): the screen each key was handed to, its place in the
        # order typed, and the keys waiting for a screen that is not ready yet.
        self._typed_on: weakref.WeakKeyDictionary[events.Key, Screen] = weakref.WeakKeyDictionary()
        self._order: weakref.WeakKeyDictionary[events.Key, int] = weakref.WeakKeyDictionary()
        self._count = itertools.count()
        self._held: list[tuple[int, events.Key]] = []
        self._held_for: Screen | None = None
        self._woken: weakref.WeakSet[Screen] = weakref.WeakSet()
        self.keystrokes = 0  # every key typed since the app started (the review shows it)

    def on_mount(self) -> None:
        self.push_screen(Dashboard())

    # -- keys -----------------------------------------------------------------------------------
    # Textual hands a key to the focused widget and runs its binding only when the key bubbles
    # back, against whatever screen is on top by then; a screen pushed by an earlier key may not
    # be mounted or loaded yet, or the key may have gone to the screen below. So every key is
    # resolved on the screen it was handed to; a key overtaken by a screen change is handed
    # again to the new screen; keys for a screen that cannot act yet wait, in typing order.

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key):
            await super().on_event(event)
            return
        screen = self.screen
        if event.is_forwarded:
            typed_on = self._typed_on.pop(event, screen)
            if typed_on is screen:
                await super().on_event(event)  # back from its widget: run its binding
                return
            # An earlier key changed the screen before this key's binding ran.
            again = events.Key(event.key, event.character)
            self._order[again] = self._order.get(event, next(self._count))
            event = again
        elif event not in self._order:
            self._order[event] = next(self._count)
            self.keystrokes += 1
        if self._held and self._held_for is not screen:
            self._drop_held()
        if self._held or not takes_keys(screen):
            self._hold(event, screen)
            return
        self._typed_on[event] = screen
        await super().on_event(event)

    def _hold(self, event: events.Key, screen: Screen) -> None:
        self._held.append((self._order[event], event))
        self._held.sort(key=lambda item: item[0])
        self._held_for = screen
        self._wake(screen)

    def _wake(self, screen: Screen) -> None:
        """Have the screen say when it is ready (screens that load data also say so later)."""
        if screen not in self._woken:
            # A screen runs its callbacks after its mount, so this arrives once it is mounted.
            self._woken.add(screen)
            screen.call_later(self.post_message, ScreenReady(screen))

    def _drop_held(self) -> None:
        count = len(self._held)
        self._held.clear()
        self._held_for = None
        self.notify(f"{count} key(s) dropped: the screen they were typed for closed", timeout=4)

    async def on_screen_ready(self, message: ScreenReady) -> None:
        """Replay the held keys, in order, on the screen they were typed for."""
        if message.screen is not self._held_for:
            return
        if self._held_for is not self.screen:
            self._drop_held()
            return
        while self._held and takes_keys(self.screen):
            _, event = self._held.pop(0)
            self._typed_on[event] = self.screen
            await super().on_event(event)
        if self._held:
            # A replayed key opened a screen that is not ready: the rest wait for that one.
            self._held_for = self.screen
            self._wake(self.screen)
        else:
            self._held_for = None

    def binding_sections(self) -> list[tuple[str, list[Binding]]]:
        """(where, bindings) for the app and every screen on the stack."""
        sections = [("everywhere", [b for b in self.BINDINGS if isinstance(b, Binding)])]
        for screen in reversed(self.screen_stack):
            bindings = [b for b in getattr(screen, "BINDINGS", []) if isinstance(b, Binding)]
            if bindings:
                sections.append((type(screen).__name__, bindings))
        return sections

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.binding_sections()))

    def action_dashboard(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def action_identities(self) -> None:
        from .screens.identities import IdentitiesScreen

        self.push_screen(IdentitiesScreen())

    @contextmanager
    def worker_conn(self) -> Iterator[sqlite3.Connection]:
        """The workers' catalogue connection, one worker at a time (never from the UI thread)."""
        with self._worker_lock:
            yield self._worker_conn

    def _display(self, screen: Screen, renderable) -> None:
        """Draw the frame, then the sixels and kitty images it placed (they cannot be cells).

        Textual has no public hook after a frame is written; this method is where every frame
        passes (bench/tui.py times frames here too)."""
        super()._display(screen, renderable)
        if renderable is None:
            return
        spans = getattr(renderable, "spans", None)  # a partial update (ChopsUpdate): its lines
        escapes = self.pictures.flush(spans)
        if escapes and not self.is_headless and self._driver is not None:
            self._driver.write(escapes)
            self._driver.flush()

    def on_unmount(self) -> None:
        if self.pictures.protocol == "kitty" and self._driver is not None and not self.is_headless:
            # Free the terminal's copies of our pictures; the driver may be closed already.
            with suppress(OSError, ValueError, RuntimeError):
                self._driver.write(self.pictures.close())
        self.conn.close()
        with self._worker_lock:  # a worker still reading finishes first
            self._worker_conn.close()
