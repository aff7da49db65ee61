"""ArcFace loading: the safe unpickler restores the lab's pickled IResNet and runs none of it.

The real `arcface_checkpoint.tar` cannot be downloaded here, so the fixtures are small randomly
initialised IResNets saved the way the lab's file was made: the whole module pickled with
torch.save, its class under a module path that does not exist when the file is loaded.
"""

from __future__ import annotations

import os
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from reelface.models.base import ModelError
from reelface.swap import arcface, identity, safe_load
from reelface.swap.arcface import IResNet, IResNetConfig

TINY = IResNetConfig(layers=(1, 2, 1, 1), widths=(8, 16, 16, 32), embedding=64)
FOREIGN = "labmodels.arcface_models"  # stands for SimSwap's models.arcface_models


def tiny_net(seed: int = 0) -> IResNet:
    """A randomly initialised tiny IResNet with non-trivial BN statistics."""
    torch.manual_seed(seed)
    net = IResNet(TINY)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.num_batches_tracked.fill_(7)
    return net.eval()


def save_lab_style(net: IResNet, path: Path, marker: Path, legacy: bool = False) -> None:
    """Pickle `net` whole, with its classes under FOREIGN and two booby traps.

    The top class's __setstate__ writes `marker`; an attribute reduces to os.system touching
    `marker`.reduce. Loading must run neither. The foreign module is gone afterwards.
    """

    def install() -> dict[str, type]:
        parent, child = types.ModuleType("labmodels"), types.ModuleType(FOREIGN)
        sys.modules["labmodels"], sys.modules[FOREIGN] = parent, child
        target = str(marker)

        def trap_setstate(self, state):  # noqa: ANN001
            Path(target).write_text("setstate ran")
            torch.nn.Module.__setstate__(self, state)

        def trap_reduce(self):  # noqa: ANN001
            return (os.system, (f"touch {target}.reduce",))

        classes = {
            "ResNet": type("ResNet", (IResNet,), {"__setstate__": trap_setstate}),
            "IRBlock": type("IRBlock", (arcface.IRBlock,), {}),
            "SEBlock": type("SEBlock", (arcface.SEGate,), {}),
            "Trap": type("Trap", (), {"__reduce__": trap_reduce}),
        }
        for name, cls in classes.items():
            cls.__module__, cls.__qualname__ = FOREIGN, name
            setattr(child, name, cls)
        return classes

    classes = install()
    original = {m: m.__class__ for m in net.modules()}
    try:
        for module in net.modules():
            if type(module) is IResNet:
                module.__class__ = classes["ResNet"]
            elif type(module) is arcface.IRBlock:
                module.__class__ = classes["IRBlock"]
            elif type(module) is arcface.SEGate:
                module.__class__ = classes["SEBlock"]
        net.trap = classes["Trap"]()
        torch.save(net, path, _use_new_zipfile_serialization=not legacy)
    finally:
        for module, cls in original.items():
            module.__class__ = cls
        del net.trap
        del sys.modules[FOREIGN], sys.modules["labmodels"]


def _same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.filterwarnings("ignore:Couldn't retrieve source code")
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_safe_loader_restores_lab_module_without_running_it(tmp_path: Path, legacy: bool) -> None:
    net, marker = tiny_net(), tmp_path / "marker"
    path = tmp_path / "arcface_checkpoint.tar"
    save_lab_style(net, path, marker, legacy)
    loaded = identity.load_identity(path, device="cpu")
    assert _same(loaded.net.state_dict(), net.state_dict())
    assert loaded.matched == "names" and loaded.dim == TINY.embedding
    assert not marker.exists() and not Path(f"{marker}.reduce").exists()
    assert "labmodels" not in sys.modules and FOREIGN not in sys.modules
    raw = safe_load.load_safe(path)
    assert isinstance(raw, safe_load.Placeholder) and raw.qualname == f"{FOREIGN}.ResNet"
    assert raw.state["trap"].args == (f"touch {marker}.reduce",)  # recorded, never called
    x = torch.rand(3, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(loaded.net(x), net(x), atol=1e-6)


def test_plain_torch_load_would_run_the_trap(tmp_path: Path) -> None:
    """The fixture is a real threat: only the explicit trusted path executes it."""
    marker = tmp_path / "marker"
    path = tmp_path / "arcface_checkpoint.tar"
    save_lab_style(tiny_net(), path, marker)
    loaded = identity.load_identity(path, trust_pickle=True, device="cpu")
    assert Path(f"{marker}.reduce").exists()  # os.system ran: that is what --trust-pickle means
    assert _same(loaded.net.state_dict(), tiny_net().state_dict())


def test_state_dict_and_training_dict_files(tmp_path: Path) -> None:
    net = tiny_net(1)
    plain = tmp_path / "arcface_state.pth"
    torch.save(net.state_dict(), plain)
    assert _same(identity.load_identity(plain, device="cpu").net.state_dict(), net.state_dict())
    # foamliu's training dict: the network inside a DataParallel wrapper, next to other entries.
    wrapped = tmp_path / "BEST_checkpoint.tar"
    torch.save({"epoch": 3, "model": torch.nn.DataParallel(net), "acc": 0.9}, wrapped)
    loaded = identity.load_identity(wrapped, device="cpu")
    assert _same(loaded.net.state_dict(), net.state_dict())


def test_weights_matched_by_order_when_names_differ() -> None:
    torch.manual_seed(2)
    net = IResNet(IResNetConfig(layers=arcface.DEPTHS["r18"])).eval()
    # Other module names, same tensor order and the same last name component (as torch writes).
    renamed = OrderedDict(
        (f"m{i}.{k.rsplit('.', 1)[1]}", v) for i, (k, v) in enumerate(net.state_dict().items())
    )
    built, how = arcface.build(renamed)
    assert how == "order" and built.config.layers == arcface.DEPTHS["r18"]
    assert _same(built.state_dict(), net.state_dict())


def test_config_read_from_keys() -> None:
    state = IResNet(IResNetConfig(layers=(2, 1, 3, 1), se=False)).state_dict()
    config = arcface.infer_config(state)
    assert config.layers == (2, 1, 3, 1) and not config.se and config.embedding == 512


@pytest.mark.parametrize(
    "content, expect",
    [
        (None, "no such ArcFace file"),
        (b"not a pickle at all", "not a readable PyTorch file"),
        ({"epoch": 1, "note": "no weights"}, "holds no network weights"),
        ({"conv.weight": torch.zeros(3, 3)}, "not SimSwap's ArcFace IResNet"),
    ],
    ids=["missing", "garbage", "no-weights", "other-network"],
)
def test_bad_arcface_files_give_one_line(tmp_path: Path, content: object, expect: str) -> None:
    path = tmp_path / "arcface_checkpoint.tar"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(ModelError) as error:
        identity.load_identity(path)
    message = str(error.value)
    assert expect in message and str(path) in message and "\n" not in message


def test_embedding_follows_the_protocol(tmp_path: Path) -> None:
    """uint8 crop → [0,1] → ImageNet mean/std → bicubic 112 → net → L2, written out by hand."""
    import numpy as np

    net = tiny_net(3)
    path = tmp_path / "a.pth"
    torch.save(net.state_dict(), path)
    judge = identity.load_identity(path, device="cpu")
    crops = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.nn.functional.interpolate((x - mean) / std, size=(112, 112), mode="bicubic")
    with torch.no_grad():
        expected = torch.nn.functional.normalize(net(x), dim=1).numpy()
    from reelface.pipeline import align

    got = judge.embed(crops, align.ARCFACE.scaled(224))
    assert np.allclose(got, expected, atol=1e-5)


class _Scripted(torch.nn.Module):
    """A scripted module whose __setstate__ writes a file: TorchScript runs it on load."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.marker = state[0]
        self.training = state[1]
        torch.save(torch.zeros(1), state[0])  # the side effect a hostile file would have


def test_a_torchscript_file_runs_nothing_without_trust(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "arcface.pt"
    torch.jit.save(torch.jit.script(_Scripted(str(marker))), str(path))
    torch.jit.load(str(path))  # the fixture is a real threat: loading it runs __setstate__
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ModelError, match="TorchScript archive.*--trust-pickle"):
        identity.load_identity(path, device="cpu")
    with pytest.raises(Exception, match="TorchScript archive"):
        safe_load.load_safe(path)
    assert not marker.exists()
