"""Generator checkpoints: weights plus everything needed to use them, in one torch file.

Layout (a dict saved with torch.save, read back with torch's weights-only loader):
    format: "reelface.generator"   version: 1
    config: GeneratorConfig as a dict (image size, id_dim, channels, blocks, deep,
            convention, alignment)
    state_dict: the generator's weights
    identity: {"name", "sha256", "dim"} of the ArcFace the generator was trained with, or {}
    info: free-form provenance (step, data roots, time), JSON types only
A training checkpoint may hold this dict under the key "generator"; `load` finds it there too.
`load` also reads SimSwap's own generator state dicts (`latest_net_G.pth`, see simswap.py).
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reelface.io import atomic_write, sha256_file

from ..models.base import ModelError
from . import simswap
from .generator import Generator, GeneratorConfig

FORMAT = "reelface.generator"
VERSION = 1


@dataclass
class GeneratorCheckpoint:
    """A loaded generator and its metadata."""

    model: Generator
    config: GeneratorConfig
    path: str = ""
    sha256: str = ""
    identity: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def to_dict(
    model: Generator, identity: dict[str, Any] | None = None, info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The checkpoint dict of a generator (what `save` writes; trainers may nest it)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "identity": dict(identity or {}),
        "info": dict(info or {}),
    }


def save(
    path: Path,
    model: Generator,
    identity: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (temp name in the same folder, then rename)."""
    state = to_dict(model, identity, info)
    atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def load(
    path: Path, device: str | None = None, simswap_io: str | None = None
) -> GeneratorCheckpoint:
    """Read a checkpoint, a training checkpoint holding one, or a SimSwap generator state dict.

    `simswap_io` fixes a SimSwap file's I/O convention instead of probing for it.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"{path}: no such generator checkpoint (give a file `reelface train` wrote)"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError) as error:
        raise ModelError(
            f"{path}: not a reelface generator checkpoint ({type(error).__name__}); give a "
            "file `reelface train` wrote"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("generator"), dict):
        data = data["generator"]
    if isinstance(data, dict) and data.get("format") is None and simswap.looks_like_simswap(data):
        return _load_simswap(path, data, device, simswap_io)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(
            f"{path}: not a reelface generator checkpoint (no format {FORMAT!r}); "
            "give a file `reelface train` wrote"
        )
    if data.get("version") != VERSION:
        raise ModelError(f"{path}: checkpoint version {data.get('version')} (this reads {VERSION})")
    try:
        config = GeneratorConfig.from_dict(data["config"])
        model = Generator(config)
        model.load_state_dict(data["state_dict"], strict=True)
    except (KeyError, ValueError, RuntimeError) as error:
        raise ModelError(f"{path}: damaged checkpoint ({str(error)[:200]})") from None
    chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(chosen).eval().requires_grad_(False)
    return GeneratorCheckpoint(
        model, config, str(path), sha256_file(path), data.get("identity", {}), data.get("info", {})
    )


def _load_simswap(
    path: Path, state: dict, device: str | None, simswap_io: str | None
) -> GeneratorCheckpoint:
    """A SimSwap `latest_net_G.pth` as a checkpoint; it records no ArcFace (pass --arcface)."""
    try:
        found = simswap.import_state(state, simswap_io)
    except (simswap.SimSwapFormatError, RuntimeError) as error:
        raise ModelError(f"{path}: {str(error)[:300]}") from None
    chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = found.model.to(chosen).eval().requires_grad_(False)
    info = {"simswap": {"layout": found.layout, "convention": model.config.convention,
                        "convention_by": found.convention_by}}  # fmt: skip
    return GeneratorCheckpoint(model, model.config, str(path), sha256_file(path), {}, info)
