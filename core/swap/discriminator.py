"""Discriminators: the multi-scale patch D (default, no pretrained weights) and a projected D.

Both return, per scale or level, the list of intermediate feature maps with the logits last, so
the losses read logits (`[-1]`) and feature-matching taps (`[:-1]`) the same way. Inputs are
images in the generator's convention (convention.py), as real and fake images both are.

The projected D (spec §3.1) needs a frozen pretrained backbone; it is only built from a
`torch.export` file (.pt2) the user supplies, mapping a batch of images to a list of feature
maps (e.g. timm's tf_efficientnet_lite0 with features_only, exported once in eval mode with a
dynamic batch dimension). Nothing is downloaded; TorchScript is deprecated in torch 2.13.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..models.base import ModelError

KINDS = ("patch", "projected")


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Shape of the discriminator; stored in training checkpoints."""

    kind: str = "patch"
    channels: int = 64  # first layer's width; doubles per strided layer, capped at 8×
    layers: int = 4  # stride-2 layers per patch D (pix2pixHD's n_layers, spec §3.2)
    scales: int = 2  # patch Ds: full resolution, then each halved by average pooling
    backbone: str = ""  # projected only: path of the exported (.pt2) feature network

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown discriminator {self.kind!r} (known: {', '.join(KINDS)})")
        if self.kind == "projected" and not self.backbone:
            raise ValueError(
                "the projected discriminator needs --backbone FILE (torch.export .pt2)"
            )

    @classmethod
    def tiny(cls) -> DiscriminatorConfig:
        return cls(channels=8, layers=2, scales=2)

    @classmethod
    def from_dict(cls, data: dict) -> DiscriminatorConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)


class PatchDiscriminator(nn.Module):
    """pix2pixHD patch D: strided 4×4 convs, two stride-1 convs, one logit per patch."""

    def __init__(self, channels: int = 64, layers: int = 4, in_channels: int = 3) -> None:
        super().__init__()
        widths = [min(channels * 2**i, channels * 8) for i in range(layers + 1)]
        first = nn.Sequential(nn.Conv2d(in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True))
        stages = [first]
        for a, b in zip(widths[: layers - 1], widths[1:layers], strict=True):
            stages.append(_block(a, b, stride=2))
        stages.append(_block(widths[layers - 1], widths[layers], stride=1))
        stages.append(nn.Sequential(nn.Conv2d(widths[layers], 1, 4, 1, 1)))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


def _block(inp: int, out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, 4, stride, 1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, True)
    )


class MultiScaleDiscriminator(nn.Module):
    """Several patch Ds, each on the image halved once more (3×3 average pool, pad excluded)."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.discs = nn.ModuleList(
            PatchDiscriminator(config.channels, config.layers) for _ in range(config.scales)
        )

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for index, disc in enumerate(self.discs):
            if index:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            out.append(disc(x))
        return out


class ProjectedDiscriminator(nn.Module):
    """Frozen backbone taps → fixed random 1×1 projections, top-down fusion → small patch Ds."""

    def __init__(self, config: DiscriminatorConfig, backbone: nn.Module, image_size: int) -> None:
        super().__init__()
        self.config = config
        # Unregistered: exported graphs refuse train()/eval(), and their weights stay in the
        # user's file (not in our checkpoints); _apply below still moves it with .to().
        self.__dict__["backbone"] = backbone.requires_grad_(False)
        with torch.no_grad():
            taps = backbone(torch.zeros(2, 3, image_size, image_size))
        widths = [int(t.shape[1]) for t in taps]
        c = config.channels
        # Fixed random projections (seeded, frozen) onto one width, as Projected GAN's CCM/CSM.
        self.ccm = nn.ModuleList(nn.Conv2d(w, c, 1) for w in widths)
        self.csm = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in widths)
        self.ccm.requires_grad_(False)
        self.csm.requires_grad_(False)
        # Each level is upsampled ×2 (as Projected GAN's fusion does), then gets as many
        # stride-2 layers as bring it to about 4×4 patches before the two stride-1 convs.
        sides = [2 * int(t.shape[-1]) for t in taps]
        self.discs = nn.ModuleList(
            PatchDiscriminator(c, max(1, int(math.log2(side / 4))), in_channels=c) for side in sides
        )

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 - torch's signature
        super()._apply(fn, recurse)
        self.backbone._apply(fn)
        return self

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        taps = self.backbone(x)
        feats = [ccm(t) for ccm, t in zip(self.ccm, taps, strict=True)]
        fused = [feats[-1]]
        for level in range(len(feats) - 2, -1, -1):  # top-down: add the coarser level, upsampled
            up = F.interpolate(fused[0], size=feats[level].shape[-2:], mode="bilinear")
            fused.insert(0, feats[level] + up)
        logits = [
            disc(csm(F.interpolate(f, scale_factor=2.0, mode="bilinear")))[-1]
            for csm, disc, f in zip(self.csm, self.discs, fused, strict=True)
        ]
        # Feature matching reads the deepest backbone tap (spec §4.1), once.
        return [[taps[-1], logits[0]]] + [[g] for g in logits[1:]]


def load_backbone(path: Path) -> nn.Module:
    """An exported feature network (images → list of maps); ModelError names file and fix."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"{path}: no such backbone (give a torch.export .pt2 file of the projected D's "
            "feature network, or use --discriminator patch)"
        )
    try:
        return torch.export.load(str(path)).module()
    except Exception as error:  # the export loader raises many types for foreign files
        raise ModelError(
            f"{path}: not a torch.export program ({type(error).__name__}); export it with "
            "torch.export.export(...) and torch.export.save, or use --discriminator patch"
        ) from None


def build(config: DiscriminatorConfig, image_size: int = 224) -> nn.Module:
    """The discriminator `config` describes (the projected one probes its backbone at size)."""
    if config.kind == "projected":
        return ProjectedDiscriminator(config, load_backbone(Path(config.backbone)), image_size)
    return MultiScaleDiscriminator(config)
