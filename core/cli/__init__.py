"""The `reelface` command: every step of the workflow, headless and scriptable."""

from reelface.cli import extract  # noqa: F401  (init, models, extract, faces, demo register)
from reelface.cli.group import main


def _load_rest() -> None:
    """The other commands, imported when first asked for: `reelface extract` starts without
    them (60 ms of its start-up: identities, training, evaluation, the daemon's and the TUI's)."""
    from importlib.metadata import entry_points

    from reelface.cli import films, identities, maintenance  # noqa: F401  (register on main)
    from reelface.cli.evaluate import eval_command
    from reelface.cli.train import export_model_command, swap_command, train_command

    for command in (eval_command, train_command, swap_command, export_model_command):
        main.add_command(command)
    for ep in entry_points(group="reelface.commands"):
        # daemon/ and tui/ add their own subcommands without core importing them.
        main.add_command(ep.load())


main.load_rest = _load_rest

__all__ = ["main"]
