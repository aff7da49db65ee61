"""The lab's identity evaluation: swap 20 source/target pairs both ways, ArcFace cosine distance.

Protocol (MISSION.md step 8): every photo's largest face is detected and aligned at the
generator's input alignment and size; source_NN's identity is put on target_NN and the result
compared with source_NN, then the other way round; distance = 1 − cos of the ArcFace vectors
(convention.py: [0, 1], ImageNet mean/std, bicubic to 112, L2-normalised), all in the aligned
crop (no paste-back). The mean over all results is the score; lower is better.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from reelface.config import ExtractConfig
from reelface.errors import ReelfaceError
from reelface.models.base import AlignTemplate, Detection, Detector
from reelface.pipeline import align, decode, detect

PAIR_NAME = re.compile(r"^(source|target)_(\d+)$", re.IGNORECASE)
PROTOCOL_PAIRS = 20
DETECT_SIZE = 640  # SimSwap's own detector input; faces in the lab's photos are large
# Re-detection around the chosen face, for precise landmarks, as extraction does it.
REFINE_SIZE = ExtractConfig.refine_size
THRESHOLD = 0.5
DIRECTIONS = ("source_to_target", "target_to_source")
TEMPLATES = {"arcface": align.ARCFACE, "ffhq": align.FFHQ}


class EvalError(ReelfaceError, RuntimeError):
    """The evaluation cannot run; the message names the file or folder and the fix."""


class Swapper(Protocol):
    """Puts identities on aligned target crops; the evaluation's view of a generator."""

    name: str
    size: int
    alignment: str  # key of TEMPLATES
    id_dim: int | None  # None: needs no identity vectors

    def swap(self, targets: np.ndarray, sources: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 targets, the matching sources and their unit vectors → results."""
        ...


@dataclass
class GeneratorSwapper:
    """A trained generator checkpoint (reelface.swap.checkpoint.GeneratorCheckpoint)."""

    name: str
    checkpoint: Any
    batch: int = 8

    @property
    def size(self) -> int:
        return self.checkpoint.config.image_size

    @property
    def alignment(self) -> str:
        return self.checkpoint.config.alignment

    @property
    def id_dim(self) -> int:
        return self.checkpoint.config.id_dim

    def swap(self, targets: np.ndarray, sources: np.ndarray, ids: np.ndarray) -> np.ndarray:
        import torch

        from reelface.swap import convention

        model = self.checkpoint.model
        device = next(model.parameters()).device
        out = []
        with torch.inference_mode():
            for start in range(0, len(targets), self.batch):
                x = convention.to_unit(targets[start : start + self.batch], device)
                z = torch.from_numpy(ids[start : start + self.batch]).to(device, torch.float32)
                out.append(convention.to_uint8(model.swap(x, z)))
        return np.concatenate(out)


@dataclass
class NoSwap:
    """The "no swap" baseline: the result is the target itself."""

    size: int
    alignment: str
    name: str = "no swap"
    id_dim: int | None = None

    def swap(self, targets: np.ndarray, sources: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return targets.copy()


@dataclass
class CopySource:
    """The "perfect swap" bound: the result is the source crop (distance 0 by construction)."""

    size: int
    alignment: str
    name: str = "source copy"
    id_dim: int | None = None

    def swap(self, targets: np.ndarray, sources: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return sources.copy()


@dataclass
class Photo:
    """One test photo and its chosen face."""

    path: Path
    image: np.ndarray | None = None
    face: Detection | None = None
    faces: int = 0
    problem: str = ""  # why the photo cannot be used, "" when it can


@dataclass
class Pair:
    """source_NN and target_NN (either may be missing)."""

    number: str
    source: Photo | None = None
    target: Photo | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return all(p is not None and not p.problem for p in (self.source, self.target))


@dataclass
class Result:
    """One method's swaps of one pair: crops (for the grid) and the two distances."""

    source: np.ndarray
    target: np.ndarray
    source_on_target: np.ndarray  # source identity on the target, compared with the source
    target_on_source: np.ndarray
    distances: dict[str, float]  # DIRECTIONS → 1 − cos


@dataclass
class Report:
    """Everything the evaluation found; eval_report.py turns it into table, JSON, CSV, grid."""

    testset: str
    pairs: list[Pair]
    methods: list[str]
    results: dict[str, dict[str, Result]]  # method → pair number → result
    problems: list[str]
    info: dict[str, Any]

    def mean(self, method: str, direction: str | None = None) -> float | None:
        """Mean distance of a method over all its results (or one direction)."""
        values = [
            d
            for r in self.results.get(method, {}).values()
            for key, d in r.distances.items()
            if direction in (None, key)
        ]
        return float(np.mean(values)) if values else None


def discover(folder: Path) -> tuple[list[Pair], list[str]]:
    """Pairs by name (source_NN / target_NN, any image extension) and problems with the names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalError(
            f"{folder}: no such test-set folder (give the folder of source_NN/target_NN)"
        )
    pairs: dict[str, Pair] = {}
    problems: list[str] = []
    ignored: list[str] = []
    for path in sorted(folder.iterdir()):
        match = PAIR_NAME.match(path.stem)
        if not path.is_file() or path.suffix.lower() not in decode.IMAGE_SUFFIXES or not match:
            if not path.name.startswith("."):
                ignored.append(path.name)
            continue
        role, number = match[1].lower(), f"{int(match[2]):02d}"
        pair = pairs.setdefault(number, Pair(number))
        if getattr(pair, role) is not None:
            problems.append(
                f"{path.name}: a second {role}_{number} (kept {getattr(pair, role).path.name})"
            )
            continue
        setattr(pair, role, Photo(path))
    if ignored:
        problems.append(f"ignored (not named source_NN/target_NN): {', '.join(ignored)}")
    for pair in pairs.values():
        for role in ("source", "target"):
            if getattr(pair, role) is None:
                other = "target" if role == "source" else "source"
                problems.append(
                    f"pair {pair.number}: {role}_{pair.number} missing (only "
                    f"{getattr(pair, other).path.name}); pair skipped"
                )
    if not pairs:
        raise EvalError(
            f"{folder}: no images named source_NN / target_NN "
            f"({', '.join(sorted(decode.IMAGE_SUFFIXES))}); rename the photos"
        )
    if len(pairs) != PROTOCOL_PAIRS:
        problems.append(f"{len(pairs)} pairs found; the lab's protocol has {PROTOCOL_PAIRS}")
    return [pairs[k] for k in sorted(pairs, key=int)], problems


def locate(detector: Detector, photos: list[Photo]) -> None:
    """Read each photo and find its largest face (refined), recording problems on the photo."""
    for photo in photos:
        try:
            photo.image = decode.read_image(photo.path)
        except decode.SourceError:
            photo.problem = "not a readable image"
    readable = [p for p in photos if p.image is not None]
    sizes = [min(DETECT_SIZE, int(np.ceil(max(p.image.shape[:2]) / 32) * 32)) for p in readable]
    for size in sorted(set(sizes)):
        group = [p for p, s in zip(readable, sizes, strict=True) if s == size]
        found = detector.detect([p.image for p in group], size, THRESHOLD)
        for photo, faces in zip(group, found, strict=True):
            photo.faces = len(faces)
            if not faces:
                photo.problem = "no face found"
                continue
            photo.face = detect.largest(faces)
    chosen = [p for p in readable if p.face is not None]
    refined = detect.refine(
        detector, [p.image for p in chosen], [p.face for p in chosen], REFINE_SIZE, THRESHOLD
    )
    for photo, face in zip(chosen, refined, strict=True):
        photo.face = face


def aligned_crop(photo: Photo, template: AlignTemplate, size: int) -> np.ndarray:
    """The photo's chosen face on `template` at `size` (bicubic warp, black border)."""
    matrix = align.align_matrix(photo.face.landmarks, template, size)
    return align.warp(photo.image, matrix, size)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise 1 − cos of unit vectors (re-normalised, so any vectors are fine)."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 1.0 - np.sum(a * b, axis=1)


def evaluate(
    testset: Path,
    swappers: list[Swapper],
    judge: Any,
    detector: Detector,
    id_net: Any | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Report:
    """Run the protocol for each swapper; `judge` scores, `id_net` (default judge) drives swaps.

    `on_step` is told each stage as it starts: finding the faces, then one per swapper."""
    id_net = id_net or judge
    step = on_step or (lambda what: None)
    for swapper in swappers:
        if swapper.id_dim is not None and swapper.id_dim != id_net.dim:
            raise EvalError(
                f"{swapper.name} takes {swapper.id_dim}-d identity vectors but {id_net.path} "
                f"gives {id_net.dim}-d; give the ArcFace the generator was trained with"
            )
    pairs, problems = discover(testset)
    photos = [p for pair in pairs for p in (pair.source, pair.target) if p is not None]
    step(f"finding the faces of {len(photos)} photos")
    locate(detector, photos)
    for pair in pairs:
        for photo in (pair.source, pair.target):
            if photo is None:
                continue
            if photo.problem:
                problems.append(f"{photo.path.name}: {photo.problem}; pair {pair.number} skipped")
            elif photo.faces > 1:
                pair.notes.append(f"{photo.path.name}: {photo.faces} faces, largest used")
    usable = [p for p in pairs if p.usable]
    if not usable:
        raise EvalError(f"{testset}: no pair has a readable face in both photos (see above)")
    results: dict[str, dict[str, Result]] = {}
    for swapper in swappers:
        step(f"{swapper.name}: swapping and judging {len(usable)} pairs")
        results[swapper.name] = _run(swapper, usable, judge, id_net)
    info = {"detector": detector.name, "detect_size": DETECT_SIZE, "threshold": THRESHOLD}
    return Report(str(testset), pairs, [s.name for s in swappers], results, problems, info)


def _run(swapper: Swapper, pairs: list[Pair], judge: Any, id_net: Any) -> dict[str, Result]:
    """Both directions for every pair, batched: one generator pass per direction."""
    template = TEMPLATES[swapper.alignment].scaled(swapper.size)
    sources = np.stack([aligned_crop(p.source, template, swapper.size) for p in pairs])
    targets = np.stack([aligned_crop(p.target, template, swapper.size) for p in pairs])
    needs_ids = swapper.id_dim is not None
    src_ids = id_net.embed(sources, template) if needs_ids else np.zeros((len(pairs), 0))
    tgt_ids = id_net.embed(targets, template) if needs_ids else np.zeros((len(pairs), 0))
    on_target = swapper.swap(targets, sources, src_ids)
    on_source = swapper.swap(sources, targets, tgt_ids)
    e_src, e_tgt = judge.embed(sources, template), judge.embed(targets, template)
    forward = cosine_distance(judge.embed(on_target, template), e_src)
    backward = cosine_distance(judge.embed(on_source, template), e_tgt)
    return {
        pair.number: Result(
            sources[i],
            targets[i],
            on_target[i],
            on_source[i],
            {DIRECTIONS[0]: float(forward[i]), DIRECTIONS[1]: float(backward[i])},
        )
        for i, pair in enumerate(pairs)
    }
