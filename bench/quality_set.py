"""The labelled set of bench/quality.py: real faces rendered into frames and damaged as films
damage them, each with its label and the truth of where its five points are."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from reelface import synth
from reelface.models import install
from reelface.pipeline import align, quality

FRAMES_PER_SHOT = 6  # a static shot sampled this many times gives one face and its duplicates
# A crop is misaligned when the real face's five points sit this far (RMS, in eye distances) from
# the template; correct detections of these photos sit at 0.03–0.15.
MISPLACED = 0.25


@dataclass(frozen=True)
class Source:
    """One real face: its photo, its five landmarks there, and a name."""

    name: str
    photo: np.ndarray
    landmarks: np.ndarray

    @property
    def iod(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))


@dataclass
class Sample:
    """One labelled face as rendered, found and judged."""

    label: str
    kind: str  # the damage done, e.g. "disc r=3.1"
    source: str
    shot: int
    frame: np.ndarray
    truth: np.ndarray  # (5, 2) in the frame
    size: int  # delivered crop size
    perturb: str = ""  # how the detector's landmarks are spoiled ("" = kept)
    found: bool = False
    crop: np.ndarray | None = None  # delivered
    analysis: np.ndarray | None = None  # the 256 px preview
    measures: quality.Measures | None = None
    points: np.ndarray | None = None  # the landmarks judged (spoiled ones for misaligned)
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)


def sources(models_dir: Path) -> list[Source]:
    """Every face of the package photos and of the installed samples large enough to use."""
    from reelface.models.scrfd import ScrfdDetector

    out = []
    photos, marks = synth.package_photos(), synth.package_landmarks()
    for name in ("insightface_t1", "skimage_astronaut"):
        photo = synth.load_photo(photos[name])
        out += [Source(f"{name}/{i}", photo, m) for i, m in enumerate(marks[name])]
    detector = ScrfdDetector(install.detector_path(models_dir))
    for name, side in (
        ("gauss.png", 1024),
        ("newton.png", 1024),
        ("solvay_conference_1927.jpg", 3008),
    ):
        photo = synth.load_photo(install.samples_dir(models_dir) / name)
        for i, det in enumerate(detector.detect([photo], side, 0.6)[0]):
            out.append(Source(f"{name}/{i}", photo, det.landmarks.astype(np.float64)))
    return out


# -- damage --------------------------------------------------------------------------------------


def disc_psf(radius: float) -> np.ndarray:
    """Optical defocus: a uniform disc, anti-aliased at its rim."""
    half = int(math.ceil(radius)) + 1
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    kernel = np.clip(radius + 0.5 - np.hypot(x, y), 0, 1).astype(np.float32)
    return kernel / kernel.sum()


def line_psf(length: float, angle: float) -> np.ndarray:
    """Motion blur: a line of `length` pixels at `angle` degrees."""
    half = int(math.ceil(length / 2)) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    for t in np.linspace(-length / 2, length / 2, int(length * 4) + 1):
        kernel[int(round(half + t * dy)), int(round(half + t * dx))] += 1
    return kernel / kernel.sum()


def grain_and_compress(frame: np.ndarray, rng: np.random.Generator, heavy: bool) -> np.ndarray:
    """Film grain (slightly blurred luma noise) and JPEG compression, as every film has some."""
    sigma = rng.uniform(2.0, 6.0) if heavy else rng.uniform(0.0, 3.0)
    noise = cv2.GaussianBlur(rng.normal(0, sigma, frame.shape[:2]).astype(np.float32), (0, 0), 0.5)
    noisy = np.clip(frame.astype(np.float32) + noise[..., None], 0, 255).astype(np.uint8)
    quality_ = int(rng.integers(40, 70) if heavy else rng.integers(70, 95))
    ok, data = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, quality_])
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if ok else noisy


def _ellipse(frame: np.ndarray, centre, axes, angle: float, colour, rng) -> None:
    """Paste a soft-edged textured ellipse (a hand, a towel, a glove) over the frame."""
    mask = np.zeros(frame.shape[:2], np.float32)
    cv2.ellipse(
        mask,
        (int(centre[0]), int(centre[1])),
        (int(axes[0]), int(axes[1])),
        angle,
        0,
        360,
        1.0,
        -1,
    )
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, axes[1] * 0.08))[..., None]
    texture = rng.normal(0, 8, frame.shape[:2])[..., None]
    shading = np.linspace(-15, 15, frame.shape[1])[None, :, None]
    patch = np.clip(np.asarray(colour, np.float32) + texture + shading, 0, 255)
    frame[:] = (frame * (1 - mask) + patch * mask).astype(np.uint8)


def occlude(frame: np.ndarray, truth: np.ndarray, kind: str, rng: np.random.Generator) -> None:
    """Cover features the way films do: a hand over the mouth, a towel, a helmet, a visor."""
    iod = float(np.linalg.norm(truth[1] - truth[0]))
    eyes, mouth = (truth[0] + truth[1]) / 2, (truth[3] + truth[4]) / 2
    angle = math.degrees(math.atan2(*(truth[1] - truth[0])[::-1]))
    skin = frame[int(truth[2, 1]), int(truth[2, 0])].astype(np.float32) * rng.uniform(0.8, 1.1)
    if kind == "hand over mouth and nose":
        centre = (truth[2] + mouth) / 2
        _ellipse(frame, centre, (1.2 * iod, 0.75 * iod), angle + rng.uniform(-20, 20), skin, rng)
    elif kind == "hand over an eye":
        eye = truth[int(rng.integers(0, 2))]
        _ellipse(frame, eye + (truth[2] - eyes) * 0.4, (0.8 * iod, 1.0 * iod), angle, skin, rng)
    elif kind == "towel over the lower face":
        colour = rng.uniform(60, 240, 3)
        _ellipse(frame, mouth + (mouth - eyes) * 0.3, (1.8 * iod, 1.0 * iod), angle, colour, rng)
    elif kind == "helmet over the eyes":
        colour = rng.uniform(20, 120, 3)
        _ellipse(frame, eyes - (mouth - eyes) * 0.5, (2.0 * iod, 1.15 * iod), angle, colour, rng)
    else:  # "dark bar over the eyes": sunglasses, a visor
        _ellipse(frame, eyes, (1.35 * iod, 0.32 * iod), angle, (15, 15, 15), rng)


def spoil(landmarks: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A failed landmark estimate, as a detector makes one."""
    p = landmarks.astype(np.float64).copy()
    iod = float(np.linalg.norm(p[1] - p[0]))
    centre = p.mean(0)
    if kind == "mirrored":
        return p[[1, 0, 2, 4, 3]]
    if kind == "scale":
        factor = rng.choice([rng.uniform(1.35, 1.7), rng.uniform(0.55, 0.7)])
        return (p - centre) * factor + centre
    moved = rng.choice(5, size=int(rng.integers(1, 3)), replace=False)
    for i in moved:
        a = rng.uniform(0, 2 * math.pi)
        p[i] += rng.uniform(0.45, 0.8) * iod * np.array([math.cos(a), math.sin(a)])
    return p


def misplacing(
    points: np.ndarray, truth: np.ndarray, kind: str, size: int, rng: np.random.Generator
) -> np.ndarray:
    """A spoiled estimate whose crop visibly misplaces the real face: the true landmarks land
    at least MISPLACED eye distances (RMS) off the template (a moved nose tip alone may not)."""
    template = align.FFHQ.scaled(size)
    for _ in range(50):
        spoiled = spoil(points, kind, rng)
        matrix = align.align_matrix(spoiled, align.FFHQ, size)
        if quality.residual(truth, matrix, template) >= MISPLACED:
            return spoiled
    return spoiled


# -- rendering -------------------------------------------------------------------------------------


def render(src: Source, rng: np.random.Generator, eye: float, roll: float, shift=(0.0, 0.0)):
    """The face in a 12 × 8 eye-distance frame at `eye` px between the eyes; frame and truth."""
    width, height = int(12 * eye) // 2 * 2, int(8 * eye) // 2 * 2
    centre = (width / 2 + shift[0], height * 0.42 + shift[1])
    pose = synth.Pose(centre, eye, roll)
    shot = synth.Shot(src.photo, src.landmarks[None], 0, 1, pose, pose)
    frame, matrix = synth.render_frame(shot, 0.0, (width, height))
    return frame, align.apply(matrix, src.landmarks)


TEMPLATE_IOD = float(align.FFHQ.points[1, 0] - align.FFHQ.points[0, 0]) / align.FFHQ.size
SMALLEST = 128  # delivered crop sizes are multiples of 32 from here
MAX_UPSCALE = 1.35  # below the rules' 1.43, so that no face of the set is too small to keep


def delivered_size(eye: float, upscale: float) -> int:
    """The crop size nearest to showing a face of `eye` px between the eyes enlarged by
    `upscale`, a multiple of 32, never enlarging it more than MAX_UPSCALE."""
    size = max(SMALLEST, int(round(eye * upscale / TEMPLATE_IOD / 32)) * 32)
    while size > SMALLEST and size * TEMPLATE_IOD / eye > MAX_UPSCALE:
        size -= 32
    return size


def smallest_zoom(src: Source) -> float:
    """The least zoom at which the face still fills the smallest crop without MAX_UPSCALE."""
    return SMALLEST * TEMPLATE_IOD / (MAX_UPSCALE * 0.95) / src.iod


# Faces labelled by eye: soft in the photo itself (Solvay's face 7, a back-row face out of focus,
# beside its sharp neighbours at every crop size), so even their clean renders are blurry.
SOFT_IN_THE_PHOTO = {"solvay_conference_1927.jpg/7"}


def make_set(srcs: list[Source], seed: int) -> list[Sample]:
    """The labelled set: per source face, good, blurry, incomplete and misaligned renders."""
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    shot = 0

    def add(label, kind, src, frame, truth, size, perturb="", heavy=False):
        nonlocal shot
        frame = grain_and_compress(frame, rng, heavy)
        out.append(Sample(label, kind, src.name, shot, frame, truth, size, perturb))
        shot += 1

    for src in srcs:
        for variant in range(7):
            # Never more pixels than the photo has; never too small for the smallest crop.
            zoom = rng.uniform(min(max(0.6, smallest_zoom(src)), 1.0), 1.0)
            eye = src.iod * zoom
            upscale = rng.uniform(0.8, 1.35)
            size = delivered_size(eye, upscale)
            measured = min(1.0, upscale)  # pixels as measured per frame pixel
            roll = rng.uniform(-20, 20)
            frame, truth = render(src, rng, eye, roll)
            if variant in (0, 1) and src.name in SOFT_IN_THE_PHOTO:
                add("blurry", "soft in the photo", src, frame, truth, size, heavy=variant == 1)
            elif variant in (0, 1):
                add("good", "clean", src, frame, truth, size, heavy=variant == 1)
            elif variant == 2:
                r = rng.uniform(2.0, 5.0) / measured
                blurred = cv2.filter2D(frame, -1, disc_psf(r))
                add("blurry", f"defocus r={r:.1f}", src, blurred, truth, size, heavy=True)
            elif variant == 3:
                length = rng.uniform(6.0, 14.0) / measured
                psf = line_psf(length, rng.uniform(0, 180))
                add(
                    "blurry",
                    f"motion {length:.0f}px",
                    src,
                    cv2.filter2D(frame, -1, psf),
                    truth,
                    size,
                )
            elif variant == 4:
                kinds = (
                    "hand over mouth and nose",
                    "hand over an eye",
                    "towel over the lower face",
                    "helmet over the eyes",
                    "dark bar over the eyes",
                )
                kind = kinds[int(rng.integers(0, len(kinds)))]
                occlude(frame, truth, kind, rng)
                add("incomplete", kind, src, frame, truth, size)
            elif variant == 5:
                # Cut by the frame edge: the face's centre near a side, a third to half outside.
                side = float(rng.choice([-1, 1]))
                width = frame.shape[1]
                dx = side * (width / 2 - rng.uniform(0.0, 0.5) * eye)
                frame, truth = render(src, rng, eye, roll, (dx, 0.0))
                add("incomplete", "frame edge", src, frame, truth, size)
            else:
                kind = str(rng.choice(["mirrored", "scale", "points", "points"]))
                add("misaligned", f"landmarks {kind}", src, frame, truth, size, perturb=kind)
    return out


def duplicate_shots(srcs: list[Source], seed: int, shots: int) -> list[Sample]:
    """Static shots sampled FRAMES_PER_SHOT times: the camera breathes, grain changes."""
    rng = np.random.default_rng(seed + 1)
    out = []
    chosen = rng.choice(len(srcs), size=min(shots, len(srcs)), replace=False)
    for n, index in enumerate(chosen):
        src = srcs[int(index)]
        eye = src.iod * rng.uniform(min(max(0.7, smallest_zoom(src)), 1.0), 1.0)
        size = delivered_size(eye, rng.uniform(0.9, 1.3))
        roll = rng.uniform(-10, 10)
        for _ in range(FRAMES_PER_SHOT):
            jitter = rng.normal(0, 1.5, 2)
            frame, truth = render(src, rng, eye * rng.uniform(0.99, 1.01), roll, tuple(jitter))
            frame = grain_and_compress(frame, rng, heavy=False)
            out.append(Sample("duplicate", "static shot", src.name, 10_000 + n, frame, truth, size))
    return out
