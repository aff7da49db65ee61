"""SimSwap generator state dicts (`latest_net_G.pth`) in and out of our Generator.

The network is the same as SimSwap's `Generator_Adain_Upsample` (spec §2.1, §2.2); only the
parameter names differ. Import recognises the layout from names and shapes (224 or 512
`--Gdeep`, both `fs_networks` and `fs_networks_fix`, which share every name and shape) and
picks the I/O convention by a reconstruction probe, since the names cannot tell them apart.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, replace

import torch

from ..errors import ReelfaceError
from . import convention as conv
from .generator import DOWN_LEVELS, Generator, GeneratorConfig
from .simswap_keys import LAYOUTS

# SimSwap's scripts build the class with these (fsModel: n_blocks=9, latent 512, ngf 64).
CHANNELS, BLOCKS, ID_DIM = 64, 9, 512
LAYOUT_OF = {False: "fix", True: "fix 512"}  # 224 / deep; "people" lists are identical
PROBE_SIZE = 64  # the probe is fully convolutional; small keeps it cheap on a CPU


class SimSwapFormatError(ReelfaceError, ValueError):
    """A state dict that is not one of SimSwap's generator layouts; says what differs."""


@dataclass(frozen=True)
class Imported:
    """A SimSwap file as our generator, with how its convention was chosen."""

    model: Generator
    layout: str  # "224" or "512 deep"
    convention_by: str  # "probe" or "given"


def to_simswap_name(name: str, deep: bool) -> str:
    """Our parameter name → SimSwap's (`stem.1.weight` → `first_layer.1.weight`)."""
    levels = DOWN_LEVELS + deep
    if m := re.fullmatch(r"stem\.(\d+)\.(.+)", name):
        return f"first_layer.{m[1]}.{m[2]}"
    if m := re.fullmatch(r"down\.(\d+)\.(.+)", name):
        return f"down{int(m[1]) + 1}.{m[2]}"
    if m := re.fullmatch(r"blocks\.(.+)", name):
        return f"BottleNeck.{m[1]}"
    if m := re.fullmatch(r"up\.(\d+)\.(.+)", name):
        return f"up{levels - int(m[1])}.{m[2]}"  # our up.0 is the deepest (SimSwap's up3/up4)
    if m := re.fullmatch(r"head\.(.+)", name):
        return f"last_layer.{m[1]}"
    raise KeyError(name)


def _our_names(deep: bool) -> dict[str, str]:
    """SimSwap name → our name for the standard configuration."""
    with torch.device("meta"):
        names = Generator(_config(deep, "imagenet")).state_dict()
    return {to_simswap_name(k, deep): k for k in names}


def _config(deep: bool, convention: str) -> GeneratorConfig:
    # 224 data is ArcFace-template aligned (VGGFace2-224); 512 Gdeep data is VGGFace2-HQ (FFHQ).
    return GeneratorConfig(
        image_size=512 if deep else 224, id_dim=ID_DIM, channels=CHANNELS, blocks=BLOCKS,
        deep=deep, convention=convention, alignment="ffhq" if deep else "arcface",
    )  # fmt: skip


def looks_like_simswap(state: dict) -> bool:
    """Whether a dict of tensors uses SimSwap's generator names at all."""
    return any(
        isinstance(k, str) and k.split(".")[0] in ("first_layer", "BottleNeck", "last_layer")
        for k in state
    )


def _differences(state: dict[str, torch.Tensor], layout: str) -> list[str]:
    expected = dict(LAYOUTS[layout])
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    shapes = [
        f"{k} is {tuple(state[k].shape)}, SimSwap's is {expected[k]}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k]
    ]
    out = []
    if missing:
        out.append(f"{len(missing)} missing (first {missing[0]})")
    if extra:
        out.append(f"{len(extra)} unexpected (first {extra[0]})")
    if shapes:
        out.append(f"{len(shapes)} of other shape (first {shapes[0]})")
    return out


def detect(state: dict[str, torch.Tensor]) -> bool:
    """`deep` for a SimSwap state dict; SimSwapFormatError naming what differs from both."""
    if any(k.startswith(("down0.", "up0.")) for k in state):
        raise SimSwapFormatError(
            "SimSwap's 512 beta generator (fs_networks_512: 32-channel stem, down0/up0) is "
            "not supported; use a 224 model or one trained with --Gdeep"
        )
    found = {deep: _differences(state, LAYOUT_OF[deep]) for deep in (False, True)}
    for deep, differences in found.items():
        if not differences:
            return deep
    # Name the layout it is closest to: 512 deep when it has a down4, else 224.
    deep = any(k.startswith("down4.") for k in state)
    label = "512 --Gdeep" if deep else "224"
    raise SimSwapFormatError(
        f"not a SimSwap {label} generator (64 channels, 9 blocks, 512-d identity): "
        + "; ".join(found[deep])
    )


def probe_convention(model: Generator) -> str:
    """The convention under which the generator best reproduces a target's colours.

    A trained SimSwap generator keeps the target's colours and background; fed the wrong
    normalisation it washes them out (SimSwap's "white face" reports), so the closer one wins.
    """
    gen = torch.Generator().manual_seed(0)
    # Smooth, skin-toned blobs: far enough from flat that both hypotheses are tested.
    low = torch.rand(1, 3, 4, 4, generator=gen) * 0.5 + torch.tensor([0.4, 0.3, 0.25]).view(
        1, 3, 1, 1
    )
    x01 = torch.nn.functional.interpolate(low, size=(PROBE_SIZE,) * 2, mode="bicubic").clamp(0, 1)
    z = torch.nn.functional.normalize(torch.randn(1, model.config.id_dim, generator=gen), dim=1)
    device = next(model.parameters()).device
    x01, z = x01.to(device), z.to(device)
    errors = {}
    original = model.config
    try:
        for name in conv.CONVENTIONS:
            model.config = replace(original, convention=name)  # input and output activation
            with torch.no_grad():
                errors[name] = (model.swap(x01, z) - x01).abs().mean().item()
    finally:
        model.config = original
    return min(errors, key=errors.__getitem__)


def import_state(state: dict[str, torch.Tensor], convention: str | None = None) -> Imported:
    """Our generator holding a SimSwap state dict's weights (bit-identical tensors)."""
    deep = detect(state)
    names = _our_names(deep)
    ours = OrderedDict((names[k], state[k]) for k in names)
    model = Generator(_config(deep, convention or "imagenet")).eval()
    model.load_state_dict(ours, strict=True)
    layout = "512 deep" if deep else "224"
    if convention:
        return Imported(model, layout, "given")
    chosen = probe_convention(model)
    model.config = replace(model.config, convention=chosen)
    return Imported(model, layout, "probe")


def export_state(model: Generator) -> OrderedDict[str, torch.Tensor]:
    """Our generator's weights under SimSwap's names and order; ValueError if it cannot fit."""
    config = model.config
    if (config.channels, config.blocks, config.id_dim) != (CHANNELS, BLOCKS, ID_DIM):
        raise SimSwapFormatError(
            f"SimSwap builds 64 channels, 9 blocks, 512-d identity; this generator has "
            f"{config.channels}, {config.blocks}, {config.id_dim}-d (train without --tiny)"
        )
    return OrderedDict(
        (to_simswap_name(k, config.deep), v.detach().cpu()) for k, v in model.state_dict().items()
    )


def simswap_class(config: GeneratorConfig) -> str:
    """Which SimSwap network file runs an exported generator with the right I/O."""
    if config.convention == "unit":
        return "models/fs_networks.py (input [0, 1], Tanh output), as its test scripts do"
    return "models/fs_networks_fix.py with ImageNet-normalised input and output (as train.py)"
