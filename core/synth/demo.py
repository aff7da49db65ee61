"""A short film of real photos shipped in installed packages: the demo's and the tests' input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reelface import synth
from reelface.workspace import Workspace

# Faces of t1.jpg that are well measured (frontal) and distinct people.
T1_FACES = (0, 2, 3)


@dataclass(frozen=True)
class Person:
    """One face of a photo: the image, the (F, 5, 2) landmarks of all its faces, which one."""

    photo: np.ndarray
    landmarks: np.ndarray
    face: int


def package_cast() -> list[Person]:
    """Four people from photos in insightface and scikit-image (the test extra installs them)."""
    photos, marks = synth.package_photos(), synth.package_landmarks()
    if "insightface_t1" not in photos or "skimage_astronaut" not in photos:
        raise FileNotFoundError(
            "the test films need insightface's t1.jpg and scikit-image's astronaut.png "
            "(pip install -e '.[test]')"
        )
    t1 = synth.load_photo(photos["insightface_t1"])
    astro = synth.load_photo(photos["skimage_astronaut"])
    return [
        Person(astro, marks["skimage_astronaut"], 0),
        *(Person(t1, marks["insightface_t1"], face) for face in T1_FACES),
    ]


def sample_cast(models_dir: Path) -> list[Person]:
    """Four people from the photos `reelface models install` checked: Gauss, Newton, two of Solvay.

    Their landmarks come from the float32 detector, so the demo needs nothing else installed.
    """
    from reelface.models import install
    from reelface.models.scrfd import ScrfdDetector

    detector = ScrfdDetector(install.detector_path(models_dir))
    people = []
    for name, faces in (("gauss.png", 1), ("newton.png", 1), ("solvay_conference_1927.jpg", 2)):
        photo = synth.load_photo(install.samples_dir(models_dir) / name)
        found = detector.detect([photo], 1024 if faces == 1 else 3008, 0.5)[0]
        # The largest faces: the most pixels to show at the demo's crop size.
        found.sort(key=lambda d: -float(np.prod(d.box[2:] - d.box[:2])))
        landmarks = np.stack([d.landmarks for d in found[:faces]]).astype(np.float64)
        people += [Person(photo, landmarks, face) for face in range(faces)]
    return people


def scenario(
    width: int = 1280,
    height: int = 720,
    eye: float = 110.0,
    frames: int = 30,
    cast: list[Person] | None = None,
) -> list[synth.Shot]:
    """Cuts between four real people: pans, zooms, a blurred, a tilted and a cut-off face."""
    a, b, c, d = cast or package_cast()
    cx, cy = width / 2, height * 0.42

    def shot(who: Person, start: synth.Pose, end: synth.Pose, **kw) -> synth.Shot:
        return synth.Shot(who.photo, who.landmarks, who.face, frames, start, end, **kw)

    P = synth.Pose
    return [
        shot(a, P((cx - 60, cy), eye), P((cx + 60, cy), eye)),
        shot(b, P((cx, cy), eye * 0.9), P((cx, cy), eye * 1.2)),
        shot(c, P((cx, cy + 20), eye), P((cx - 40, cy), eye)),
        shot(d, P((cx, cy), eye), P((cx, cy), eye * 1.1)),
        shot(a, P((cx, cy), eye), P((cx, cy), eye), blur=5.0, label="blur"),
        shot(c, P((cx, cy), eye, 42.0), P((cx, cy), eye, 48.0), label="tilt"),
        shot(a, P((eye * 0.15, cy), eye), P((eye * 0.25, cy), eye), label="edge"),
    ]


def make_demo_film(ws: Workspace, models_dir: Path, size: int = 512) -> Path:
    """Write the demo film into WORKSPACE/demo/ (once) and return its path.

    Not the inbox: a running daemon would claim it and move it away from the catalogue's path.
    """
    path = ws.root / "demo" / f"demo-{size}.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Eye distance such that faces pass the default minimum size at this crop size.
        eye = max(60.0, size * 0.25)
        shots = scenario(eye=eye, cast=sample_cast(models_dir))
        synth.make_film(path, shots, size=(1280, 720), fps=25)
    return path
