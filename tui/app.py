"""The reelface review app: dashboard, identities, review grid, face detail; keyboard only."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider

from reelface import catalogue
from reelface.workspace import Workspace

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


class ReelfaceApp(App):
    """One workspace, one catalogue connection shared by every screen."""

    TITLE = "reelface"
    COMMANDS = App.COMMANDS | {ActionCommands}
    BINDINGS = [
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("D", "dashboard", "Dashboard", id="app.dashboard"),
        Binding("I", "identities", "Identities", id="app.identities"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.conn = catalogue.open_catalogue(workspace.catalogue_path)
        self.thumbs = ThumbCache(workspace.root)

    def on_mount(self) -> None:
        self.push_screen(Dashboard())

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

    def on_unmount(self) -> None:
        self.conn.close()
