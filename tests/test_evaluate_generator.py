"""The SimSwap generator, its I/O convention and the checkpoint format eval reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reelface.models.base import ModelError
from reelface.swap import checkpoint, convention
from reelface.swap.generator import Generator, GeneratorConfig


def test_full_size_matches_the_spec() -> None:
    """Spec §2.1: about 55.05 M parameters at 224, 59.8 M with the deep level."""
    with torch.device("meta"):
        plain = sum(p.numel() for p in Generator(GeneratorConfig()).parameters())
        deep = sum(p.numel() for p in Generator(GeneratorConfig(deep=True)).parameters())
    assert round(plain / 1e6, 2) == 55.05 and round(deep / 1e6, 1) == 59.8


@pytest.mark.parametrize("deep", [False, True])
@pytest.mark.parametrize("conv", ["imagenet", "unit"])
def test_tiny_shapes_and_conventions(deep: bool, conv: str) -> None:
    config = GeneratorConfig(
        image_size=64, id_dim=48, channels=8, blocks=2, deep=deep, convention=conv
    )
    model = Generator(config).eval()
    x01 = torch.rand(2, 3, 64, 64)
    z = torch.nn.functional.normalize(torch.randn(2, 48), dim=1)
    with torch.no_grad():
        out = model.swap(x01, z)
    assert out.shape == (2, 3, 64, 64) and out.min() >= 0 and out.max() <= 1


def test_identity_vector_changes_the_result() -> None:
    torch.manual_seed(0)
    model = Generator(GeneratorConfig.tiny()).eval()
    for block in model.blocks:  # default init starts near identity modulation; push it away
        torch.nn.init.normal_(block.style1.linear.weight, std=0.5)
    x = torch.rand(1, 3, 64, 64)
    z1, z2 = (torch.nn.functional.normalize(torch.randn(1, 512), dim=1) for _ in range(2))
    with torch.no_grad():
        assert not torch.allclose(model.swap(x, z1), model.swap(x, z2))


def test_imagenet_round_trip() -> None:
    x = torch.rand(2, 3, 8, 8)
    back = convention.generator_image(convention.generator_input(x, "imagenet"), "imagenet")
    assert torch.allclose(back, x, atol=1e-6)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = Generator(GeneratorConfig.tiny(id_dim=64)).eval()
    path = tmp_path / "run" / "generator.pt"
    checkpoint.save(
        path, model, identity={"name": "x", "sha256": "ab", "dim": 64}, info={"step": 5}
    )
    loaded = checkpoint.load(path, device="cpu")
    assert loaded.config == model.config and loaded.info == {"step": 5}
    assert loaded.identity["dim"] == 64 and not list(path.parent.glob("*.part"))
    x, z = torch.rand(2, 3, 64, 64), torch.randn(2, 64)
    with torch.no_grad():
        assert torch.equal(loaded.model(x, z), model(x, z))
    # A training checkpoint holding the generator dict under "generator" loads the same way.
    nested = tmp_path / "train.pt"
    torch.save({"generator": checkpoint.to_dict(model), "step": 5, "optim": {}}, nested)
    assert checkpoint.load(nested, device="cpu").config == model.config


@pytest.mark.parametrize(
    "content, expect",
    [
        (None, "no such generator checkpoint"),
        (b"\x00garbage", "not a reelface generator checkpoint"),
        ({"state": 1}, "not a reelface generator checkpoint"),
    ],
    ids=["missing", "garbage", "foreign"],
)
def test_bad_checkpoints(tmp_path: Path, content: object, expect: str) -> None:
    path = tmp_path / "g.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(ModelError, match=expect):
        checkpoint.load(path)
