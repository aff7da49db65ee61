"""The review app's settings: the `[tui]` section of the workspace's reelface.toml."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from reelface.config import ConfigError

from .graphics.detect import CHOICES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class TuiConfig:
    """How the app draws faces."""

    graphics: str = "auto"  # auto, kitty, sixel or halfblock (README: Pictures in the terminal)


def load(config_path: Path) -> TuiConfig:
    """The `[tui]` section; missing keys take their defaults, unknown ones are an error."""
    try:
        values: dict[str, Any] = tomllib.loads(config_path.read_text(encoding="utf-8")).get(
            "tui", {}
        )
    except FileNotFoundError:
        return TuiConfig()
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {config_path}: {error} (fix or delete the file)") from error
    known = {f.name for f in fields(TuiConfig)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{config_path} [tui]: unknown key {key!r} (known: {', '.join(known)})"
            )
        if key == "graphics" and value not in CHOICES:
            raise ConfigError(f"{config_path} [tui]: graphics must be one of {', '.join(CHOICES)}")
    return TuiConfig(**values)
