"""SimSwap's generator: encoder, identity-injection residual blocks, decoder (spec §2.1).

No skip connections; batch norm in the encoder and decoder; in the bottleneck each residual
block normalises per instance (no affine) and re-styles the features with a scale and shift
computed from the identity vector. `GeneratorConfig.tiny()` is the CPU test size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn import functional as F

from . import convention as conv

DOWN_LEVELS = 3  # stride-2 convolutions between the stem and the bottleneck (×8 channels)


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that fixes the generator's shape and its I/O; stored in every checkpoint."""

    image_size: int = 224
    id_dim: int = 512  # length of the identity vector (the ArcFace embedding)
    channels: int = 64  # stem width; each down level doubles it (64 → 512)
    blocks: int = 9  # identity-injection residual blocks
    deep: bool = False  # one more down/up level (SimSwap's --Gdeep, used for 512)
    convention: str = "imagenet"  # I/O normalisation, see convention.py
    alignment: str = "arcface"  # template the crops are aligned on: "arcface" or "ffhq"

    def __post_init__(self) -> None:
        conv.check(self.convention)
        if self.alignment not in ("arcface", "ffhq"):
            raise ValueError(f"unknown alignment {self.alignment!r} (arcface or ffhq)")
        if self.image_size % (2 ** (DOWN_LEVELS + self.deep)):
            raise ValueError(f"image size {self.image_size} must divide by the downsampling")

    @classmethod
    def tiny(cls, id_dim: int = 512, image_size: int = 64) -> GeneratorConfig:
        """About 0.5 M parameters (mostly the identity linears): milliseconds per image on a CPU."""
        return cls(image_size=image_size, id_dim=id_dim, channels=8, blocks=2)

    @classmethod
    def from_dict(cls, data: dict) -> GeneratorConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown generator settings {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)


class InstanceNorm(nn.Module):
    """Per-channel spatial standardisation without affine: x−mean over sqrt(mean square+ε)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=(2, 3), keepdim=True)
        return x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + 1e-8)


class IdStyle(nn.Module):
    """x·(1+γ)+β with per-channel γ, β from the identity vector (AdaIN-like)."""

    def __init__(self, id_dim: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(id_dim, 2 * channels)

    def forward(self, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.linear(identity)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


class IdBlock(nn.Module):
    """Residual block: (pad, conv, norm, id-style, ReLU, pad, conv, norm, id-style) + input."""

    def __init__(self, channels: int, id_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3))
        self.style1 = IdStyle(id_dim, channels)
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3))
        self.style2 = IdStyle(id_dim, channels)
        self.norm = InstanceNorm()

    def forward(self, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.style1(self.norm(self.conv1(x)), identity))
        y = self.style2(self.norm(self.conv2(y)), identity)
        return x + y


def _down(inp: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, out, 3, 2, 1), nn.BatchNorm2d(out), nn.ReLU(True))


def _up(inp: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(inp, out, 3, 1, 1),
        nn.BatchNorm2d(out),
        nn.ReLU(True),
    )


class Generator(nn.Module):
    """G(target image, identity vector) → swapped image, both in the config's convention."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or GeneratorConfig()
        c = config.channels
        widths = [c * 2**i for i in range(DOWN_LEVELS + 1)]  # 64, 128, 256, 512
        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(3, c, 7), nn.BatchNorm2d(c), nn.ReLU(True)
        )
        downs = [_down(a, b) for a, b in zip(widths, widths[1:], strict=False)]
        ups = [_up(b, a) for a, b in reversed(list(zip(widths, widths[1:], strict=False)))]
        if config.deep:
            downs.append(_down(widths[-1], widths[-1]))
            ups.insert(0, _up(widths[-1], widths[-1]))
        self.down = nn.Sequential(*downs)
        self.blocks = nn.ModuleList(
            IdBlock(widths[-1], config.id_dim) for _ in range(config.blocks)
        )
        self.up = nn.Sequential(*ups)
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c, 3, 7))

    def forward(self, target: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        x = self.down(self.stem(target))
        for block in self.blocks:
            x = block(x, identity)
        y = self.head(self.up(x))
        # The "unit" convention ends in tanh mapped to [0, 1]; "imagenet" has no activation.
        return (torch.tanh(y) + 1) / 2 if self.config.convention == "unit" else y

    def swap(self, target01: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        """[0, 1] target images and unit identity vectors → [0, 1] swapped images."""
        y = self(conv.generator_input(target01, self.config.convention), identity)
        return conv.generator_image(y, self.config.convention)
