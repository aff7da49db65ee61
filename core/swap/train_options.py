"""What a SimSwap training run is asked to do: its options, which of them a resume may change,
and the generator's and discriminator's shapes they give (TrainError when they do not fit)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import ReelfaceError
from . import discriminator, losses
from .generator import GeneratorConfig


@dataclass
class TrainOptions:
    """One training run; written to RUN/options.json and into every checkpoint."""

    data: list[str]
    out: str
    arcface: str = ""
    steps: int = 1_000_000
    batch: int = 16  # per GPU
    size: int = 224
    tiny: bool = False  # the CPU test configuration (GeneratorConfig.tiny, a small D)
    deep: bool = False
    alignment: str = "arcface"
    discriminator: str = "patch"
    backbone: str = ""
    lr: float = 4e-4
    weights: dict[str, float] = field(default_factory=lambda: losses.LossWeights().to_dict())
    augment: bool = False
    seed: int = 0
    save_every: int = 10_000
    sample_every: int = 1_000
    log_every: int = 100
    keep: int = 3  # step checkpoints kept besides latest.pt
    workers: int = 4
    device: str = ""  # "" = cuda when available
    compile: bool = False
    amp: bool = True  # bf16 autocast on GPUs
    deterministic: bool = False  # deterministic GPU kernels (exact resume on a GPU)
    trust_pickle: bool = False
    gpus: int = 1
    init: str = ""  # generator to start from (ours or SimSwap's latest_net_G.pth)
    init_io: str = ""  # a SimSwap --init file's I/O convention; "" probes for it
    convention: str = "imagenet"  # generator I/O; an --init file's own convention wins

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class TrainError(ReelfaceError, RuntimeError):
    """Training cannot start or go on; the one-line message names the file and the fix."""


# What a resumed run may change; the model, data schedule and seed come from the run itself.
RESUMABLE = ("steps", "data", "workers", "device", "compile", "amp", "deterministic", "gpus",
             "save_every", "sample_every", "log_every", "keep", "trust_pickle",
             "arcface")  # fmt: skip


def configs(
    options: TrainOptions, id_dim: int
) -> tuple[GeneratorConfig, discriminator.DiscriminatorConfig]:
    """The generator's and discriminator's shapes for these options (TrainError if invalid)."""
    try:
        base = GeneratorConfig.tiny(id_dim, options.size) if options.tiny else GeneratorConfig()
        gconfig = GeneratorConfig.from_dict(
            {**base.to_dict(), "image_size": options.size, "id_dim": id_dim,
             "deep": options.deep, "alignment": options.alignment,
             "convention": options.convention}
        )  # fmt: skip
        d_base = discriminator.DiscriminatorConfig.tiny() if options.tiny else None
        dconfig = discriminator.DiscriminatorConfig.from_dict(
            {**(d_base or discriminator.DiscriminatorConfig()).to_dict(),
             "kind": options.discriminator, "backbone": options.backbone}
        )  # fmt: skip
    except ValueError as error:
        raise TrainError(f"{options.out}: {error}") from None
    return gconfig, dconfig
