"""ArcFace recognisers from insightface packs (w600k_r50.onnx, glintr100.onnx) on onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reelface.pipeline import align

from . import runtime
from .base import ModelError, ModelFile
from .digests import sha256_of


class ArcFaceOnnxEmbedder:
    """112 px ArcFace-aligned RGB crops → unit 512-d vectors (whatever dimension the file has)."""

    template = align.ARCFACE

    def __init__(self, path: Path, name: str | None = None, device: int | None = None) -> None:
        self.session = runtime.session(path, device)
        inp = self.session.get_inputs()[0]
        out = self.session.get_outputs()[0]
        if len(inp.shape) != 4 or inp.shape[2:] != [112, 112]:
            raise ModelError(f"{path} is not a 112×112 ArcFace recogniser (input {inp.shape})")
        self.input_name = inp.name
        self.batched = not isinstance(inp.shape[0], int)
        self.dim = int(out.shape[-1])
        self.name = name or f"arcface:{path.stem}"
        self.files = (ModelFile("embedder", self.name, str(path), sha256_of(path)),)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        blob = (crops.astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 127.5
        if self.batched:
            vectors = self.session.run(None, {self.input_name: blob})[0]
        else:
            vectors = np.concatenate(
                [
                    self.session.run(None, {self.input_name: blob[i : i + 1]})[0]
                    for i in range(len(blob))
                ]
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
