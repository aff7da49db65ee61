"""Real video files synthesised from real package photos, with exact face truth."""

from .film import (
    FILL_RGB,
    FaceTruth,
    FrameTruth,
    Pose,
    Shot,
    make_film,
    read_truth,
    render_frame,
    truth_path,
)
from .photos import load_photo, package_landmarks, package_photos

__all__ = [
    "FILL_RGB",
    "FaceTruth",
    "FrameTruth",
    "Pose",
    "Shot",
    "load_photo",
    "make_film",
    "package_landmarks",
    "package_photos",
    "read_truth",
    "render_frame",
    "truth_path",
]
