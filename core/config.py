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
    batch: int = 8  # at most this many frames per detection batch (and per catalogue commit)
    exact_frames: bool = False  # decode every frame to sample exact multiples of interval
    decode_threading: str = "SLICE"  # FFmpeg threading: SLICE, FRAME, AUTO or NONE
    # Hardware decoding device ("cuda", "vaapi"…); "" = software. Checked on each film's first
    # frame; when it fails, software decoding is used and the reason shown.
    hwaccel: str = ""
    # ISA-L's deflate level, 0–3 (core/png.py); zlib's 0–9 where OpenCV stands in for it.
    png_compression: int = 1
    # Processes sharing one film, each on its own segments (pipeline/segments.py); 1 = this one.
    workers: int = 1


@dataclass(frozen=True)
class ModelsConfig:
    pack: str = "embedded"  # "embedded", an insightface pack name (buffalo_l) or a folder
    packs_dir: str = "~/.insightface/models"  # where insightface keeps named packs
    dir: str = ""  # where `reelface models install` puts the embedded models; "" = XDG default
    # On a CPU, the embedded detector and embedder run their int8 copies: 1.4-2.5× faster, the
    # same faces, landmark accuracy and identities on the bench and test sets (README "Models").
    # GPUs always run float32.
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


# Keys older workspaces wrote, and how each becomes today's: (new key, conversion).
LEGACY_KEYS = {"max_upscale": ("min_face", lambda value: 1 / value)}


def _checked(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """`values` for dataclass `cls`, each key known and each value of its default's type."""
    known = {f.name: f for f in fields(cls)}
    out = {}
    for key, value in values.items():
        if key in LEGACY_KEYS and key not in known and isinstance(value, (int, float)):
            key, value = LEGACY_KEYS[key][0], LEGACY_KEYS[key][1](value)
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
        default = getattr(cls(), key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise ConfigError(f"{where}: {key} must be {type(default).__name__}, got {value!r}")
        out[key] = value
    return out


def _section(cls: type, values: dict[str, Any], where: str) -> Any:
    return cls(**_checked(cls, values, where))


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


# Per-film settings: only what changes how one film is extracted (models and clustering are the
# workspace's). A folder's FOLDER_SETTINGS covers every film below it (inbox subfolders for 4K,
# for old 640×360 films…); a film's sidecar NAME.toml (clip.mp4.toml) covers that film.
FILM_SECTIONS: dict[str, type] = {"extract": ExtractConfig, "rules": Thresholds}
FOLDER_SETTINGS = "films.toml"  # not reelface.toml, which marks a workspace
Settings = dict[str, dict[str, Any]]


def sidecar(film: Path) -> Path:
    """The settings file of one film or image folder: its name plus .toml, beside it."""
    return film.with_name(film.name + ".toml")


def read_settings(path: Path) -> Settings:
    """A per-film settings file's [extract] and [rules], checked; ConfigError names the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error} (fix or delete the file)") from error
    out: Settings = {}
    for name, values in data.items():
        if name not in FILM_SECTIONS or not isinstance(values, dict):
            raise ConfigError(
                f"{path}: unknown section [{name}] (a film's settings take "
                f"{' and '.join(f'[{n}]' for n in FILM_SECTIONS)})"
            )
        out[name] = _checked(FILM_SECTIONS[name], values, f"{path} [{name}]")
    return out


def film_settings(film: Path, top: Path | None = None) -> tuple[Settings, list[Path]]:
    """Settings for one film and the files they came from: FOLDER_SETTINGS in each folder from
    `top` (the inbox) down to the film's, then its sidecar; later files win, key by key."""
    folders: list[Path] = []
    if top is not None:
        here = film.parent
        while here != top and top in here.parents:
            folders.append(here)
            here = here.parent
        folders.append(top)
    files = [d / FOLDER_SETTINGS for d in reversed(folders)] + [sidecar(film)]
    used = [f for f in files if f.is_file()]
    merged: Settings = {}
    for path in used:
        for name, values in read_settings(path).items():
            merged.setdefault(name, {}).update(values)
    return merged, used


def with_settings(config: Config, settings: Settings) -> Config:
    """`config` with per-film settings (or command-line options) laid over its sections."""
    for name, values in settings.items():
        config = replace(config, **{name: replace(getattr(config, name), **values)})
    return config


def describe_settings(settings: Settings, used: list[Path]) -> str:
    """One line for a film's summary: which files set what."""
    values = ", ".join(f"{k} {v}" for section in settings.values() for k, v in section.items())
    return f"settings from {', '.join(str(p) for p in used)}: {values or 'nothing'}"
