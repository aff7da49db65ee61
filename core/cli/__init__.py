"""The `reelface` command: every step of the workflow, headless and scriptable."""

from importlib.metadata import entry_points

from reelface.cli import (  # noqa: F401  (commands register on main)
    extract,
    films,
    identities,
    maintenance,
)
from reelface.cli.evaluate import eval_command
from reelface.cli.group import main
from reelface.cli.train import export_model_command, swap_command, train_command

for _command in (eval_command, train_command, swap_command, export_model_command):
    main.add_command(_command)

for _ep in entry_points(group="reelface.commands"):
    # daemon/ and tui/ add their own subcommands without core importing them.
    main.add_command(_ep.load())

__all__ = ["main"]
