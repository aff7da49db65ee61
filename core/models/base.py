"""What every detector and embedder backend returns, whatever runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..errors import ReelfaceError


@dataclass(frozen=True)
class ModelFile:
    """One weight file a backend loaded, recorded with every face for provenance."""

    role: str  # "detector" or "embedder"
    name: str
    path: str
    sha256: str


@dataclass(frozen=True)
class Detection:
    """One face found in an image: box, score and five landmarks, in that image's pixels.

    Landmark order: left eye, right eye, nose tip, left mouth corner, right mouth corner,
    "left" meaning the image's left (the person's right eye).
    """

    box: np.ndarray  # (4,) float32 x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # (5, 2) float32


@dataclass(frozen=True)
class AlignTemplate:
    """Where the five landmarks must land in a square crop of `size` pixels."""

    name: str
    size: int
    points: np.ndarray = field(repr=False)  # (5, 2) float32, same order as Detection.landmarks

    def scaled(self, size: int) -> AlignTemplate:
        return AlignTemplate(self.name, size, (self.points * (size / self.size)).astype(np.float32))


class Detector(Protocol):
    """Finds faces with five landmarks in RGB uint8 images."""

    name: str
    files: tuple[ModelFile, ...]

    def detect(
        self, images: list[np.ndarray], input_size: int, threshold: float
    ) -> list[list[Detection]]:
        """Detect in each image, resized so its longer side is `input_size` pixels."""
        ...


class Embedder(Protocol):
    """Turns crops aligned to `template` into L2-normalised identity vectors."""

    name: str
    dim: int
    template: AlignTemplate
    files: tuple[ModelFile, ...]

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, size, size, 3) RGB uint8 crops → (N, dim) float32 unit vectors."""
        ...


class ModelError(ReelfaceError, RuntimeError):
    """A model file is missing, unreadable or not the one expected; the message names the fix."""
