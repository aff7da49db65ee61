"""The daemon's settings: the `[daemon]` section of the workspace's reelface.toml."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from reelface.config import Config, ConfigError
from reelface.workspace import Workspace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Sections that belong to daemon/ and tui/, which core's strict loader does not know (yet).
OWN_SECTIONS = ("daemon", "tui")


@dataclass(frozen=True)
class DaemonConfig:
    """How the daemon watches the inbox and schedules jobs."""

    inbox: str = ""  # folder watched for films; "" = the workspace's inbox/
    stable_seconds: float = 10.0  # size and mtime unchanged this long → the copy is complete
    close_settle_seconds: float = 1.0  # after a close-after-write event, quiet this long
    scan_seconds: float = 30.0  # full rescan of the inbox (for filesystems without inotify)
    poll_seconds: float = 0.5  # main loop tick
    cpu_jobs: int = 0  # CPU jobs in parallel; 0 = one per 4 cores, at least 1
    gpus: int = -1  # GPUs to use; -1 = detect, 0 = CPU only
    ray_jobs: int = 4  # extraction jobs sent to Ray at once (with --ray)
    ray_workers: int = 4  # Ray workers sharing the films' segments (at most one per GPU)
    segment_samples: int = 120  # sampled frames per segment a Ray worker takes at a time
    max_attempts: int = 5  # a job the daemon died in this often is failed instead of resumed
    cluster_after_extract: bool = True  # queue a clustering job after each extraction
    stop_timeout: float = 120.0  # `daemon stop` waits this long for the current batch


def _raw(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error} (fix or delete the file)") from error


def load(ws: Workspace) -> DaemonConfig:
    """The `[daemon]` section of the workspace config; missing keys take their defaults."""
    values = _raw(ws.config_path).get("daemon", {})
    known = {f.name: f for f in fields(DaemonConfig)}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{ws.config_path} [daemon]: unknown key {key!r} (known: {', '.join(known)})"
            )
        default = getattr(DaemonConfig(), key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise ConfigError(
                f"{ws.config_path} [daemon]: {key} must be {type(default).__name__}, got {value!r}"
            )
        out[key] = value
    return DaemonConfig(**out)


def core_config(ws: Workspace) -> Config:
    """The core config (core skips the [daemon] section, which this module reads)."""
    return ws.config()


def inbox_path(ws: Workspace, cfg: DaemonConfig) -> Path:
    return Path(cfg.inbox).expanduser().resolve() if cfg.inbox else ws.root / "inbox"


def cpu_slots(cfg: DaemonConfig) -> int:
    return cfg.cpu_jobs if cfg.cpu_jobs > 0 else max(1, (os.cpu_count() or 1) // 4)
