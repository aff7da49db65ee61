"""SimSwap's ArcFace: an SE-LResNet-IR ("IResNet") over 112×112 crops → a 512-d embedding.

Architecture as research/simswap-spec.md §5 describes it (foamliu/InsightFace-v2's network): a
3×3 unpadded stem and 2×2 max-pool (112 → 55), four stages of IR blocks with squeeze-excitation
(55 → 55 → 28 → 14 → 7), then BN, dropout, a linear layer from the 7×7 map and BN1d. Depth,
widths and embedding size are parameters; `infer_config` reads them back from a state dict.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn

# Block counts of foamliu's factory; the SimSwap file's depth is read from its keys.
DEPTHS: dict[str, tuple[int, int, int, int]] = {
    "r18": (2, 2, 2, 2),
    "r50": (3, 4, 6, 3),
    "r101": (3, 4, 23, 3),
    "r152": (3, 8, 36, 3),
}
FINAL_MAP = 7  # spatial side after the last stage for a 112 input
SE_REDUCTION = 16


@dataclass(frozen=True)
class IResNetConfig:
    """Shape of one IResNet; the defaults are the 512-d, 64…512-channel network."""

    layers: tuple[int, int, int, int] = DEPTHS["r50"]
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    embedding: int = 512
    se: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class SEGate(nn.Module):
    """Squeeze-excitation: channel weights from the global average."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(channels // SE_REDUCTION, 1)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.PReLU(),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(self.avg_pool(x).flatten(1))
        return x * weights[:, :, None, None]


class IRBlock(nn.Module):
    """BN, conv, BN, PReLU, strided conv, BN, SE; plus the shortcut; then the same PReLU."""

    def __init__(self, inp: int, out: int, stride: int, se: bool) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(inp)
        self.conv1 = nn.Conv2d(inp, inp, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inp)
        # One single-slope PReLU serves both places, as in the original (it sees `inp` and
        # `out` channels, so it cannot have one slope per channel).
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.se = SEGate(out) if se else None
        self.downsample = (
            nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))
            if stride != 1 or inp != out
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        y = self.bn2(self.conv2(y))
        if self.se is not None:
            y = self.se(y)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.prelu(y + shortcut)


class IResNet(nn.Module):
    """112×112 ImageNet-normalised RGB → un-normalised embedding (callers L2-normalise)."""

    def __init__(self, config: IResNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or IResNetConfig()
        w = config.widths
        self.conv1 = nn.Conv2d(3, w[0], 3, 1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(2, 2)
        inp = w[0]
        stages = []
        for count, width, stride in zip(config.layers, w, (1, 2, 2, 2), strict=True):
            blocks = []
            for index in range(count):
                blocks.append(IRBlock(inp, width, stride if index == 0 else 1, config.se))
                inp = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2 = nn.BatchNorm2d(w[3])
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(w[3] * FINAL_MAP * FINAL_MAP, config.embedding)
        self.bn3 = nn.BatchNorm1d(config.embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x))
        return self.bn3(self.fc(x.flatten(1)))


_BLOCK_KEY = re.compile(r"^layer([1-4])\.(\d+)\.")


def infer_config(state: Mapping[str, torch.Tensor]) -> IResNetConfig:
    """The IResNetConfig whose state dict has these names (ValueError when it is not one)."""
    counts = [0, 0, 0, 0]
    for key in state:
        match = _BLOCK_KEY.match(key)
        if match:
            stage, index = int(match[1]) - 1, int(match[2])
            counts[stage] = max(counts[stage], index + 1)
    needed = ("conv1.weight", "prelu.weight", "fc.weight", "bn3.weight")
    if not all(counts) or any(k not in state for k in needed):
        raise ValueError("not an IResNet state dict (no layer1..layer4 blocks, stem or head)")
    widths = tuple(int(state[f"layer{i}.0.conv2.weight"].shape[0]) for i in range(1, 5))
    return IResNetConfig(
        layers=tuple(counts),  # type: ignore[arg-type]
        widths=widths,  # type: ignore[arg-type]
        embedding=int(state["fc.weight"].shape[0]),
        se=any(".se." in key for key in state),
    )


def _shapes(state: Mapping[str, torch.Tensor]) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for k, t in state.items() if not k.endswith("num_batches_tracked")]


def build(state: Mapping[str, torch.Tensor]) -> tuple[IResNet, str]:
    """An IResNet carrying these weights, and how they were matched ("names" or "order").

    Names are tried first. A file whose names differ from ours but whose tensors come in the
    same order with the same shapes (a standard depth at the default widths) loads by order.
    """
    state = _strip_prefix(state)
    try:
        model = IResNet(infer_config(state))
        model.load_state_dict(state, strict=True)
        return model.eval(), "names"
    except (ValueError, KeyError, RuntimeError):
        pass  # names differ from ours: try the order below
    wanted = _shapes(state)
    for layers in DEPTHS.values():
        for se in (True, False):
            config = IResNetConfig(layers=layers, se=se)
            with torch.device("meta"):
                shapes = _shapes(IResNet(config).state_dict())
            if shapes == wanted:
                model = IResNet(config)
                ours = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
                theirs = [t for k, t in state.items() if not k.endswith("num_batches_tracked")]
                model.load_state_dict(dict(zip(ours, theirs, strict=True)), strict=False)
                return model.eval(), "order"
    raise ValueError(
        f"the weights ({len(wanted)} tensors) match no IResNet depth ({', '.join(DEPTHS)}) "
        "by name or by order"
    )


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a DataParallel "module." prefix shared by every key."""
    keys = list(state)
    if keys and all(k.startswith("module.") for k in keys):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)
