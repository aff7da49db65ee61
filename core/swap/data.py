"""Training pairs from one or more roots of identity folders (root/<identity>/*.jpg|png).

Every random choice is a function of (seed, batch counter, rank): which identities form a batch,
which two images each row takes, the augmentation, and the cross-identity permutation. So a run
resumed at step s reads exactly the batches an uninterrupted run reads, for any worker count.
Batch counter c = 2·step + sub-iteration (0: generator update, 1: discriminator update).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from reelface.pipeline import decode

from ..errors import ReelfaceError

SUFFIXES = (".jpg", ".jpeg", ".png")


class DataError(ReelfaceError, ValueError):
    """The training data cannot be used; the one-line message names the path and the fix."""


@dataclass(frozen=True)
class Identity:
    """One person: a name unique across roots and their image files."""

    name: str
    files: tuple[Path, ...]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def scan(roots: Sequence[Path]) -> tuple[list[Identity], list[str]]:
    """The identities under each root (any with ≥ 1 image) and notes on skipped folders."""
    if not roots:
        raise DataError("no training root given; pass --data ROOT (a folder of identity folders)")
    identities: list[Identity] = []
    notes: list[str] = []
    for index, root in enumerate(Path(r) for r in roots):
        if not root.is_dir():
            raise DataError(f"{root}: no such folder; give a root holding one folder per identity")
        found = 0
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            files = _images(folder)
            if not files:
                notes.append(f"{folder}: no jpg or png images, skipped")
                continue
            identities.append(Identity(f"{index}:{root.name}/{folder.name}", tuple(files)))
            found += 1
        if not found:
            if _images(root):
                raise DataError(
                    f"{root}: images lie directly in the folder (flat); move each person's "
                    f"images into {root}/<identity>/ (one folder per identity)"
                )
            raise DataError(
                f"{root}: no identity folders with jpg or png images; give a root holding "
                "one folder per identity"
            )
    return identities, notes


def check_batch(identities: Sequence[Identity], batch: int, world: int, roots: Sequence) -> None:
    """A batch holds distinct identities on every GPU, so there must be enough of them."""
    if batch < 2:
        raise DataError(f"--batch {batch}: the generator's batch norm needs a batch of at least 2")
    need = batch * world
    if len(identities) < need:
        per = f" ({batch} per GPU × {world} GPUs)" if world > 1 else ""
        raise DataError(
            f"{', '.join(str(r) for r in roots)}: {len(identities)} identities, but --batch "
            f"{batch}{per} needs at least {need}; lower --batch or add identity folders"
        )


def read_crop(path: Path, size: int) -> np.ndarray:
    """An RGB uint8 size×size crop; a square image of another size is resized (alignment holds)."""
    try:
        image = decode.read_image(path)
    except decode.SourceError:
        raise DataError(f"{path}: not a readable image; delete or re-export it") from None
    height, width = image.shape[:2]
    if height != width:
        raise DataError(
            f"{path}: {width}×{height} is not square; training needs aligned square crops "
            "(export the identities at the training size)"
        )
    if height != size:
        shrink = height > size
        image = cv2.resize(
            image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
        )
    return image


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light augmentation: mirror half the time, ±10 % brightness and contrast."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    gain, contrast = rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1)
    x = image.astype(np.float32)
    mean = x.mean()
    x = (x - mean) * contrast + mean * gain
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Schedule:
    """Which identities each rank's c-th batch holds: an epoch is a seeded permutation."""

    count: int  # identities
    batch: int  # per rank
    world: int = 1
    seed: int = 0

    @property
    def per_epoch(self) -> int:
        return self.count // (self.batch * self.world)

    def rows(self, counter: int, rank: int = 0) -> np.ndarray:
        epoch, k = divmod(counter, self.per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.count)
        start = (k * self.world + rank) * self.batch
        return order[start : start + self.batch]


class PairBatches(torch.utils.data.Dataset):
    """Item c: this rank's c-th batch: target images, same-identity images, the id permutation.

    Even steps (c // 2 even) pair each target with its own identity (perm = identity); odd steps
    shuffle the identity images across the batch (cross-identity, spec §1). Unreadable images
    come back as an "error" string, raised by the trainer, so the message stays one line.
    """

    def __init__(
        self,
        identities: Sequence[Identity],
        size: int,
        schedule: Schedule,
        rank: int = 0,
        augment: bool = False,
    ) -> None:
        self.identities = list(identities)
        self.size = size
        self.schedule = schedule
        self.rank = rank
        self.augment = augment

    def __len__(self) -> int:
        return 2**62  # endless: the trainer's sampler picks the counters

    def __getitem__(self, counter: int) -> dict:
        rng = np.random.default_rng([self.schedule.seed, counter, self.rank, 1])
        rows = self.schedule.rows(counter, self.rank)
        targets, sources = [], []
        try:
            for row in rows:
                files = self.identities[row].files
                for out in (targets, sources):
                    image = read_crop(files[int(rng.integers(len(files)))], self.size)
                    out.append(augment(image, rng) if self.augment else image)
        except DataError as error:
            return {"error": str(error)}
        cross = (counter // 2) % 2 == 1
        perm = rng.permutation(len(rows)) if cross else np.arange(len(rows))
        return {
            "target": torch.from_numpy(np.ascontiguousarray(np.stack(targets))),
            "source": torch.from_numpy(np.ascontiguousarray(np.stack(sources))),
            "perm": torch.from_numpy(perm),
            "same": not cross,
        }
