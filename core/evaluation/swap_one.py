"""One swap: SOURCE's identity on TARGET's largest face, pasted back into the whole photo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reelface import config as config_mod
from reelface.errors import ReelfaceError
from reelface.evaluation import evaluate
from reelface.io import atomic_write, encode, write_image
from reelface.pipeline import align


@dataclass(frozen=True)
class SwapOptions:
    """One single-pair swap."""

    model: Path
    source: Path
    target: Path
    out: Path
    arcface: Path | None = None  # default: the file the checkpoint was trained with
    trust_pickle: bool = False
    models: str | None = None
    device: str | None = None
    crop_out: Path | None = None
    simswap_io: str | None = None  # a SimSwap file's I/O convention; None probes for it


class SwapError(ReelfaceError, RuntimeError):
    """The swap cannot run; the message names the file and the fix."""


def run_swap(options: SwapOptions) -> list[str]:
    """Detect, align, swap, paste back and write options.out; returns notes for the user."""
    from reelface.models import registry
    from reelface.swap import checkpoint, identity, paste

    ckpt = checkpoint.load(options.model, options.device, options.simswap_io)
    arcface = options.arcface or ckpt.identity.get("path")
    if not arcface:
        raise SwapError(f"{options.model}: records no ArcFace file; pass --arcface FILE")
    if not Path(arcface).is_file():
        raise SwapError(
            f"{options.model}: was trained with ArcFace {arcface}, which is gone; pass --arcface"
        )
    id_net = identity.load_identity(Path(arcface), options.trust_pickle, options.device)
    notes = []
    if id_net.dim != ckpt.config.id_dim:
        raise SwapError(
            f"{arcface}: gives {id_net.dim}-d vectors, the generator takes "
            f"{ckpt.config.id_dim}-d; pass the ArcFace it was trained with"
        )
    if ckpt.identity.get("sha256") and ckpt.identity["sha256"] != id_net.sha256:
        notes.append(f"{arcface} is not the ArcFace the generator was trained with")
    detector, _ = registry.load(registry.float32(config_mod.Config()), options.models)
    photos = [evaluate.Photo(Path(options.source)), evaluate.Photo(Path(options.target))]
    evaluate.locate(detector, photos)
    for photo in photos:
        if photo.problem:
            raise SwapError(f"{photo.path}: {photo.problem}; give a photo with a visible face")
        if photo.faces > 1:
            notes.append(f"{photo.path.name}: {photo.faces} faces, the largest used")
    size = ckpt.config.image_size
    template = evaluate.TEMPLATES[ckpt.config.alignment].scaled(size)
    source, target = photos
    src_crop = evaluate.aligned_crop(source, template, size)
    matrix = align.align_matrix(target.face.landmarks, template, size)
    tgt_crop = align.warp(target.image, matrix, size)
    z = id_net.embed(src_crop[None], template)
    swapper = evaluate.GeneratorSwapper("model", ckpt)
    result = swapper.swap(tgt_crop[None], src_crop[None], np.asarray(z, np.float32))[0]
    if options.crop_out:
        write_image(Path(options.crop_out), result)
    _write_image(Path(options.out), paste.paste_back(target.image, result, matrix))
    return notes


def _write_image(path: Path, rgb: np.ndarray) -> None:
    # A name without .png/.jpg still gets a PNG, as SimSwap's own scripts write.
    suffix = path.suffix.lower() if path.suffix.lower() in (".png", ".jpg", ".jpeg") else ".png"
    atomic_write(path, encode(rgb, suffix))
