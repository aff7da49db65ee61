"""A short film of real photos shipped in installed packages: the demo's and the tests' input."""

from __future__ import annotations

from pathlib import Path

from . import synth
from .workspace import Workspace

# Faces of t1.jpg that are well measured (frontal) and distinct people.
T1_FACES = (0, 2, 3)


def scenario(
    width: int = 1280, height: int = 720, eye: float = 110.0, frames: int = 30
) -> list[synth.Shot]:
    """Cuts between four real people: pans, zooms, a blurred, a tilted and a cut-off face."""
    photos = synth.package_photos()
    marks = synth.package_landmarks()
    if "insightface_t1" not in photos or "skimage_astronaut" not in photos:
        raise FileNotFoundError(
            "the demo needs insightface's t1.jpg and scikit-image's astronaut.png "
            "(pip install insightface scikit-image)"
        )
    t1 = synth.load_photo(photos["insightface_t1"])
    astro = synth.load_photo(photos["skimage_astronaut"])
    cx, cy = width / 2, height * 0.42

    def shot(photo, lm, face, start, end, **kw) -> synth.Shot:
        return synth.Shot(photo, marks[lm], face, frames, start, end, **kw)

    P = synth.Pose
    return [
        shot(astro, "skimage_astronaut", 0, P((cx - 60, cy), eye), P((cx + 60, cy), eye)),
        shot(t1, "insightface_t1", T1_FACES[0], P((cx, cy), eye * 0.9), P((cx, cy), eye * 1.2)),
        shot(t1, "insightface_t1", T1_FACES[1], P((cx, cy + 20), eye), P((cx - 40, cy), eye)),
        shot(t1, "insightface_t1", T1_FACES[2], P((cx, cy), eye), P((cx, cy), eye * 1.1)),
        shot(
            astro,
            "skimage_astronaut",
            0,
            P((cx, cy), eye),
            P((cx, cy), eye),
            blur=5.0,
            label="blur",
        ),
        shot(
            t1,
            "insightface_t1",
            T1_FACES[1],
            P((cx, cy), eye, 42.0),
            P((cx, cy), eye, 48.0),
            label="tilt",
        ),
        shot(
            astro,
            "skimage_astronaut",
            0,
            P((eye * 0.15, cy), eye),
            P((eye * 0.25, cy), eye),
            label="edge",
        ),
    ]


def make_demo_film(ws: Workspace, size: int = 512) -> Path:
    """Write the demo film into the workspace's inbox (once) and return its path."""
    path = ws.root / "inbox" / f"demo-{size}.mp4"
    if not path.exists():
        # Eye distance such that faces pass the default minimum size at this crop size.
        eye = max(60.0, size * 0.25)
        synth.make_film(path, scenario(eye=eye), size=(1280, 720), fps=25)
    return path
