"""Workspace configuration: dataclasses with defaults, read from and written to TOML."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from reelface.pipeline.quality import Thresholds

from .errors import ReelfaceError

# Sections the daemon and the TUI read themselves (core never imports them).
EXTERNAL_SECTIONS = ("daemon", "tui")


class ConfigError(ReelfaceError, ValueError):
    """The config file is unreadable or holds an unknown key or a bad value."""


@dataclass(frozen=True)
class ExtractConfig:
    interval: int = 10  # sample one frame in this many
    size: int = 1024  # output crop size (FFHQ alignment, PNG)
    detect_size: int = 0  # longer side of the frame in the coarse pass; 0 = the smallest that works
    refine_size: int = 256  # side of the square re-detection around each face kept
    threshold: float = 0.5  # detector confidence to consider a face at all
    batch: int = 8  # frames per detection batch (and per catalogue commit)
    exact_frames: bool = False  # decode every frame to sample exact multiples of interval
    decode_threading: str = "SLICE"  # FFmpeg threading: SLICE, FRAME, AUTO or NONE
    # Hardware decoding device ("cuda", "vaapi"…); "" = software. Checked on each film's first
    # frame; when it fails, software decoding is used and the reason shown.
    hwaccel: str = ""
    # zlib level 0–9 for the OpenCV fallback when fpng is not installed (fpng has one level).
    png_compression: int = 1


@dataclass(frozen=True)
class ModelsConfig:
    pack: str = "embedded"  # "embedded", an insightface pack name (buffalo_l) or a folder
    packs_dir: str = "~/.insightface/models"  # where insightface keeps named packs
    dir: str = ""  # where `reelface models install` puts the embedded models; "" = XDG default
    # On a CPU, the embedded detector runs its int8 copy: 2.5× faster, the same faces and landmark
    # accuracy on the bench and test films (README "Models"). GPUs always run float32.
    cpu_int8: bool = True


@dataclass(frozen=True)
class ClusterConfig:
    """Cosine distances (1 − cosine similarity) per embedder; see README "Clustering"."""

    # dlib ResNet (128-d): its own same-person cut, Euclidean 0.6 on raw descriptors (norm ≈ 1.35),
    # is 0.098 on unit vectors; average linkage at 0.06 scored best on bench/cluster.py's faces.
    dlib_threshold: float = 0.10
    dlib_merge: float = 0.06
    # ArcFace (512-d): not measurable here (no pack ships in a registry package); insightface's
    # same-person similarities sit above ~0.4, different people near 0 ± 0.15.
    arcface_threshold: float = 0.55
    arcface_merge: float = 0.60
    neighbours: int = 10  # edges per face in the neighbour graph
    min_size: int = 2  # smaller groups stay unsorted
    track_iou: float = 0.3  # box overlap between consecutive sampled frames to form a track


@dataclass(frozen=True)
class Config:
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    rules: Thresholds = field(default_factory=Thresholds)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def to_toml(self) -> str:
        return tomli_w.dumps(asdict(self))


def _section(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    out = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
        default = getattr(cls(), key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise ConfigError(f"{where}: {key} must be {type(default).__name__}, got {value!r}")
        out[key] = value
    return cls(**out)


def load(path: Path) -> Config:
    """Read a config file; missing keys take their defaults."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Config()
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error} (fix or delete the file)") from error
    sections = {f.name: f.type for f in fields(Config)}
    kinds = {
        "extract": ExtractConfig,
        "rules": Thresholds,
        "models": ModelsConfig,
        "cluster": ClusterConfig,
    }
    out = Config()
    for name, values in data.items():
        if name in EXTERNAL_SECTIONS:
            continue
        if name not in sections or not isinstance(values, dict):
            raise ConfigError(f"{path}: unknown section [{name}] (known: {', '.join(kinds)})")
        out = replace(out, **{name: _section(kinds[name], values, f"{path} [{name}]")})
    return out


def data_home() -> Path:
    """XDG data folder for reelface (models, default workspace)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "reelface"


def models_dir(config: Config) -> Path:
    """Where the embedded models live: $REELFACE_MODELS, the config's dir, or XDG data."""
    chosen = os.environ.get("REELFACE_MODELS") or config.models.dir
    return Path(chosen).expanduser() if chosen else data_home() / "models"
