"""SimSwap's training losses (spec §4.1): hinge adversarial, identity, reconstruction, feature
matching. Discriminator outputs are lists (one per scale) of feature lists, logits last."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.nn import functional as F

Outputs = list[list[torch.Tensor]]


@dataclass(frozen=True)
class LossWeights:
    """λ of each generator term; the defaults are the current train.py's (spec §4.1)."""

    identity: float = 30.0
    reconstruction: float = 10.0
    feature: float = 10.0
    adversarial: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def d_hinge(real: Outputs, fake: Outputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean ReLU(1 − D(real)), mean ReLU(1 + D(fake))), each summed over scales."""
    loss_real = sum(F.relu(1 - r[-1].float()).mean() for r in real)
    loss_fake = sum(F.relu(1 + f[-1].float()).mean() for f in fake)
    return loss_real, loss_fake


def g_hinge(fake: Outputs) -> torch.Tensor:
    """−mean D(fake), summed over scales."""
    return sum(-f[-1].float().mean() for f in fake)


def identity(z_fake: torch.Tensor, z_source: torch.Tensor) -> torch.Tensor:
    """mean(1 − cos) between the result's identity vectors and the sources'."""
    return (1 - F.cosine_similarity(z_fake.float(), z_source.float(), dim=1)).mean()


def reconstruction(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 in the generator's space (only applied on same-identity steps)."""
    return F.l1_loss(fake.float(), target.float())


def feature_matching(fake: Outputs, real: Outputs) -> torch.Tensor:
    """L1 between D's intermediate features of the result and of the target (real detached).

    Weighted like pix2pixHD, 1/(number of scales) per scale and 4/(layers+1) per layer, so the
    term's size does not grow with the discriminator's depth.
    """
    total = fake[0][-1].new_zeros((), dtype=torch.float32)
    for f_scale, r_scale in zip(fake, real, strict=True):
        taps = len(f_scale) - 1
        for f, r in zip(f_scale[:-1], r_scale[:-1], strict=True):
            total = total + F.l1_loss(f.float(), r.detach().float()) * 4 / (taps + 1) / len(fake)
    return total
