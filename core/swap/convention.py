"""The one written-down I/O convention of the generator and the identity network.

Images outside the networks are RGB uint8 crops, H×W×3, aligned on the checkpoint's template
(``arcface`` = insightface's 112 px ArcFace template scaled to the crop size; ``ffhq`` = the FFHQ
template scaled likewise). Inside the networks they are float tensors N×3×H×W:

- ``x01``: the crop divided by 255, in [0, 1].
- Generator, convention ``imagenet`` (the default, what SimSwap's current ``train.py`` does):
  input = (x01 − mean) / std with ImageNet mean (0.485, 0.456, 0.406) and std
  (0.229, 0.224, 0.225); output in the same space, no output activation; the image is
  output · std + mean, clamped to [0, 1], rounded to uint8 (the result as it is saved and judged).
- Generator, convention ``unit`` (SimSwap's released inference generator): input = x01; output =
  (tanh(y) + 1) / 2, already in [0, 1]. Only for checkpoints trained that way.
- Identity vector z (the generator's second input, and the evaluation's embedding):
  z = L2-normalise(ArcFace(bicubic-resize(normalise_imagenet(x01), 112 × 112))), the whole crop
  resized (no re-crop), bicubic without antialiasing (torch's default, as SimSwap's training).
- Evaluation distance: 1 − cos(z_result, z_reference) on such vectors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ARCFACE_INPUT = 112
CONVENTIONS = ("imagenet", "unit")


def check(convention: str) -> str:
    """The convention name, or ValueError naming the known ones."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown I/O convention {convention!r} (known: {', '.join(CONVENTIONS)})")
    return convention


def to_unit(crops: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W, 3) uint8 crops → N×3×H×W float32 tensor in [0, 1]."""
    import torch

    array = np.ascontiguousarray(np.asarray(crops, np.uint8).transpose(0, 3, 1, 2))
    return torch.from_numpy(array).to(device=device, dtype=torch.float32) / 255.0


def to_uint8(x01: torch.Tensor) -> np.ndarray:
    """N×3×H×W tensor in [0, 1] → (N, H, W, 3) uint8, clamped and rounded."""
    out = (x01.detach().clamp(0, 1) * 255.0).round().to("cpu").byte()
    return out.permute(0, 2, 3, 1).contiguous().numpy()


def normalise_imagenet(x01: torch.Tensor) -> torch.Tensor:
    """(x − mean) / std per channel."""
    mean, std = _stats(x01)
    return (x01 - mean) / std


def denormalise_imagenet(x: torch.Tensor) -> torch.Tensor:
    """The inverse of `normalise_imagenet`."""
    mean, std = _stats(x)
    return x * std + mean


def generator_input(x01: torch.Tensor, convention: str) -> torch.Tensor:
    """What the generator takes for a [0, 1] image under `convention`."""
    return normalise_imagenet(x01) if check(convention) == "imagenet" else x01


def generator_image(y: torch.Tensor, convention: str) -> torch.Tensor:
    """The generator's output under `convention` → image in [0, 1] (clamped)."""
    image = denormalise_imagenet(y) if check(convention) == "imagenet" else y
    return image.clamp(0, 1)


def arcface_input(x01: torch.Tensor) -> torch.Tensor:
    """The protocol's ArcFace pre-processing: ImageNet-normalise, bicubic resize to 112."""
    import torch.nn.functional as F

    x = normalise_imagenet(x01)
    if x.shape[-2:] != (ARCFACE_INPUT, ARCFACE_INPUT):
        x = F.interpolate(x, size=(ARCFACE_INPUT, ARCFACE_INPUT), mode="bicubic")
    return x


def _stats(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    mean = torch.tensor(IMAGENET_MEAN, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
    return mean, std
