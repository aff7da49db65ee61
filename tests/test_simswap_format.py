"""SimSwap generator state dicts in and out (`latest_net_G.pth`), and the trap warning."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from reelface.cli.train import export_model_command
from reelface.models.base import ModelError
from reelface.swap import checkpoint, identity, simswap, train
from reelface.swap.generator import Generator, GeneratorConfig
from reelface.swap.run_files import GENERATOR
from reelface.swap.simswap_keys import LAYOUTS
from reelface.swap.train_options import TrainError, TrainOptions
from reelface.swap.trainer import Trainer
from tests.test_arcface import TINY, save_lab_style, tiny_net


def _random_simswap(layout: str, seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    """A SimSwap state dict made from the key list alone, with random weights."""
    gen = torch.Generator().manual_seed(seed)
    return OrderedDict(
        (name, torch.randint(0, 9, shape, generator=gen) if name.endswith("tracked")
         else torch.randn(shape, generator=gen))
        for name, shape in LAYOUTS[layout]
    )  # fmt: skip


def _same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a
    )


def test_people_and_fix_layouts_agree_so_names_cannot_pick_the_convention() -> None:
    assert LAYOUTS["people"] == LAYOUTS["fix"] and LAYOUTS["people 512"] == LAYOUTS["fix 512"]
    assert (len(LAYOUTS["people"]), len(LAYOUTS["people 512"])) == (123, 137)


@pytest.mark.parametrize("deep", [False, True], ids=["224", "512-deep"])
def test_export_matches_simswap_names_shapes_and_order(deep: bool) -> None:
    """What SimSwap's load_state_dict(strict=True) checks: the same names with the same shapes."""
    model = Generator(GeneratorConfig(image_size=512 if deep else 224, deep=deep))
    exported = simswap.export_state(model)
    assert [(k, tuple(v.shape)) for k, v in exported.items()] == LAYOUTS[simswap.LAYOUT_OF[deep]]


@pytest.mark.parametrize("layout", ["people", "fix", "people 512", "fix 512"])
def test_import_each_layout_keeps_every_tensor(tmp_path: Path, layout: str) -> None:
    state = _random_simswap(layout)
    path = tmp_path / "latest_net_G.pth"
    torch.save(state, path)
    io = "unit" if layout.startswith("people") else "imagenet"
    loaded = checkpoint.load(path, "cpu", simswap_io=io)
    deep = "512" in layout
    assert (loaded.config.deep, loaded.config.image_size) == (deep, 512 if deep else 224)
    assert loaded.config.convention == io and loaded.identity == {}
    assert loaded.info["simswap"]["layout"] == ("512 deep" if deep else "224")
    assert _same(simswap.export_state(loaded.model), state)


def test_round_trip_through_export_model_is_bit_identical(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = Generator(GeneratorConfig(convention="unit")).eval()
    for module in model.modules():  # non-default BN statistics, so buffers are checked too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2)
            module.num_batches_tracked.fill_(1234)
    run = tmp_path / "run"
    checkpoint.save(run / GENERATOR, model)
    out = tmp_path / "simswap" / "latest_net_G.pth"
    result = CliRunner().invoke(export_model_command, [str(run), "--simswap", str(out)])
    assert result.exit_code == 0, result.output
    assert "fs_networks.py" in result.output  # a unit-convention model runs in the people class
    written = torch.load(out, weights_only=True)
    assert [(k, tuple(v.shape)) for k, v in written.items()] == LAYOUTS["people"]
    back = checkpoint.load(out, "cpu", simswap_io="unit")
    assert _same(back.model.state_dict(), model.state_dict())


def test_mismatched_files_are_one_line_errors(tmp_path: Path) -> None:
    state = _random_simswap("fix")
    del state["BottleNeck.8.style2.linear.bias"]
    state["up1.1.weight"] = torch.zeros(64, 128, 5, 5)
    path = tmp_path / "latest_net_G.pth"
    torch.save(state, path)
    with pytest.raises(ModelError) as caught:
        checkpoint.load(path, "cpu")
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "BottleNeck.8.style2.linear.bias" in message and "up1.1.weight" in message
    beta = OrderedDict({"first_layer.1.weight": torch.zeros(32, 3, 7, 7),
                        "down0.0.weight": torch.zeros(64, 32, 3, 3)})  # fmt: skip
    torch.save(beta, path)
    with pytest.raises(ModelError, match="fs_networks_512"):
        checkpoint.load(path, "cpu")


def test_a_tiny_generator_is_refused_for_export(tmp_path: Path) -> None:
    path = tmp_path / "generator.pt"
    checkpoint.save(path, Generator(GeneratorConfig.tiny()))
    result = CliRunner().invoke(export_model_command, [str(path), "--simswap", str(tmp_path / "o")])
    assert result.exit_code == 2 and "SimSwap builds 64 channels" in result.output
    assert not (tmp_path / "o").exists()


def _trained_tiny(convention: str) -> Generator:
    """A tiny generator taught to reproduce its target under `convention` (as SimSwap's do).

    200 steps: after 60 its error was still 0.14 and which convention the probe chose depended
    on the CPU's float kernels (right on Intel, wrong on AMD EPYC); after 150 it was 0.08.
    """
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(image_size=32, id_dim=16, channels=8, blocks=1,
                                      convention=convention))  # fmt: skip
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(200):
        low = torch.rand(4, 3, 4, 4, generator=gen)
        x01 = torch.nn.functional.interpolate(low, size=(32, 32), mode="bilinear")
        z = torch.nn.functional.normalize(torch.randn(4, 16, generator=gen), dim=1)
        loss = (model.swap(x01, z) - x01).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@pytest.mark.parametrize("convention", ["unit", "imagenet"])
def test_probe_finds_the_convention_a_generator_was_trained_with(convention: str) -> None:
    model = _trained_tiny(convention)
    model.config = GeneratorConfig.from_dict({**model.config.to_dict(), "convention": "imagenet"})
    assert simswap.probe_convention(model) == convention


def test_trap_in_a_file_with_weights_is_reported_once(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "arcface_checkpoint.tar"
    save_lab_style(tiny_net(), path, marker)
    identity.load_identity(path, device="cpu")
    lines = [line for line in capsys.readouterr().err.splitlines() if "refused" in line]
    assert len(lines) == 1 and "system" in lines[0] and str(path) in lines[0]
    assert not Path(f"{marker}.reduce").exists()
    plain = tmp_path / "arcface_state.pth"
    torch.save(tiny_net().state_dict(), plain)
    identity.load_identity(plain, device="cpu")
    assert "refused" not in capsys.readouterr().err


def test_train_init_starts_from_the_file_and_refuses_another_shape(tmp_path: Path) -> None:
    arcface = tmp_path / "arcface.pth"
    torch.save(tiny_net().state_dict(), arcface)
    torch.manual_seed(5)
    cfg = GeneratorConfig.from_dict({**GeneratorConfig.tiny(TINY.embedding).to_dict(),
                                     "convention": "unit"})  # fmt: skip
    start = Generator(cfg)
    init = tmp_path / "init.pt"
    checkpoint.save(init, start)
    options = TrainOptions(data=[], out=str(tmp_path / "run"), arcface=str(arcface),
                                 size=64, tiny=True, init=str(init), device="cpu")  # fmt: skip
    options, state = train.prepare(options, resume=False)
    assert state is None and options.convention == "unit"
    trainer = Trainer(options)
    trainer.init_generator(init)
    assert _same(trainer.G.state_dict(), start.state_dict())
    options.deep = True
    with pytest.raises(TrainError, match=r"deep False \(run: True\)"):
        Trainer(options).init_generator(init)
