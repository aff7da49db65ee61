"""Identity networks for swapping and judging: SimSwap's ArcFace (torch) or insightface ONNX.

`load_identity(path)` picks the backend from the file: `.onnx` → an insightface recogniser;
anything else → a torch file read with the safe loader (a whole pickled IResNet like the lab's
`arcface_checkpoint.tar`, or a plain state dict of one).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from reelface.io import sha256_file
from reelface.pipeline import align

from ..models.base import AlignTemplate, ModelError
from . import convention

TRUST_HINT = "pass --trust-pickle only if you trust where the file came from"


class IdentityNet(Protocol):
    """Aligned uint8 crops → L2-normalised identity vectors."""

    name: str
    kind: str  # "iresnet" or "onnx"
    dim: int
    path: str
    sha256: str

    def embed(self, crops: np.ndarray, template: AlignTemplate) -> np.ndarray:
        """(N, S, S, 3) RGB uint8 crops aligned on `template` at S → (N, dim) unit float32."""
        ...


@dataclass
class TorchArcFace:
    """SimSwap's ArcFace with the protocol's pre-processing (convention.arcface_input)."""

    name: str
    path: str
    sha256: str
    net: object  # an IResNet in eval mode
    matched: str  # "names" or "order": how the file's tensors were mapped onto ours
    kind: str = "iresnet"

    @property
    def dim(self) -> int:
        return int(self.net.config.embedding)

    def embed(self, crops: np.ndarray, template: AlignTemplate) -> np.ndarray:
        import torch

        device = next(self.net.parameters()).device
        with torch.inference_mode():
            x = convention.arcface_input(convention.to_unit(crops, device))
            vectors = torch.nn.functional.normalize(self.net(x).float(), dim=1)
        return vectors.cpu().numpy()

    def embed_tensor(self, x01: object) -> object:
        """Differentiable unit vectors of [0, 1] image tensors (for a training loss)."""
        import torch

        out = self.net(convention.arcface_input(x01))
        return torch.nn.functional.normalize(out, dim=1)


@dataclass
class OnnxArcFace:
    """An insightface recogniser: each crop re-warped to its own 112 template, (x−127.5)/127.5."""

    name: str
    path: str
    sha256: str
    session: object
    dim: int
    kind: str = "onnx"

    def embed(self, crops: np.ndarray, template: AlignTemplate) -> np.ndarray:
        size = crops.shape[1]
        points = template.scaled(size).points
        chips = np.stack([align.crop_from_crop(c, points, align.ARCFACE, 112) for c in crops])
        blob = (chips.astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 127.5
        name = self.session.get_inputs()[0].name
        vectors = np.concatenate(
            [self.session.run(None, {name: blob[i : i + 1]})[0] for i in range(len(blob))]
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def load_identity(path: Path, trust_pickle: bool = False, device: str | None = None) -> IdentityNet:
    """The identity network in `path`; ModelError (one line, file and fix) when it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"{path}: no such ArcFace file (give SimSwap's arcface_checkpoint.tar, a state dict "
            "of the same IResNet, or an insightface w600k_r50.onnx / glintr100.onnx)"
        )
    if path.suffix.lower() == ".onnx":
        return _load_onnx(path)
    return _load_torch(path, trust_pickle, device)


def _load_onnx(path: Path) -> OnnxArcFace:
    from ..models import runtime

    try:
        session = runtime.session(path)
    except Exception as error:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: not a readable ONNX model ({error}); re-download it") from None
    inp, out = session.get_inputs()[0], session.get_outputs()[0]
    if len(inp.shape) != 4 or list(inp.shape[2:]) != [112, 112]:
        raise ModelError(f"{path}: not a 112×112 recogniser (input {inp.shape}); give w600k_r50")
    return OnnxArcFace(
        f"onnx:{path.stem}", str(path), sha256_file(path), session, int(out.shape[-1])
    )


def _load_torch(path: Path, trust_pickle: bool, device: str | None) -> TorchArcFace:
    import pickle
    import zipfile

    import torch

    from . import arcface, safe_load

    if not trust_pickle and safe_load.is_torchscript(path):
        raise ModelError(
            f"{path}: a TorchScript archive, and loading one runs code stored in it; give a "
            f"state dict of the network ({TRUST_HINT} if you trust the file)"
        )
    try:
        if trust_pickle:
            print(
                f"warning: {path}: fully unpickling (this runs code stored in the file)",
                file=sys.stderr,
            )
            obj = safe_load.load_trusted(path)
        else:
            obj = safe_load.load_safe(path)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError) as error:
        raise ModelError(
            f"{path}: not a readable PyTorch file ({type(error).__name__}: {error}); "
            "re-download it or give a state dict"
        ) from None
    state = safe_load.state_dict_of(obj)
    if not state:
        raise ModelError(
            f"{path}: holds no network weights ({type(obj).__name__}); give SimSwap's "
            f"arcface_checkpoint.tar or a state dict of its IResNet ({TRUST_HINT} if it needs one)"
        )
    try:
        net, matched = arcface.build(state)
    except (ValueError, RuntimeError) as error:
        raise ModelError(f"{path}: {error}; this is not SimSwap's ArcFace IResNet") from None
    chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
    net = net.to(chosen).eval().requires_grad_(False)
    return TorchArcFace(f"iresnet:{path.stem}", str(path), sha256_file(path), net, matched)
