"""Real face photos shipped inside installed packages (insightface, skimage), with landmarks."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package without importing it (insightface imports are slow)."""
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


# (package, relative path) of real face photos known to ship inside wheels.
_PHOTOS: dict[str, tuple[str, str]] = {
    "insightface_t1": ("insightface", "data/images/t1.jpg"),
    "insightface_tom_hanks": ("insightface", "data/images/Tom_Hanks_54745.png"),
    "skimage_astronaut": ("skimage", "data/astronaut.png"),
}

# Five landmarks per face, measured once with dlib's 68-point model (eye centre = mean of the six
# eye contour points, nose tip, mouth corners), faces ordered left to right. Good to ~2 px.
_LANDMARKS: dict[str, list[list[list[float]]]] = {
    "insightface_t1": [
        [[87.7, 330.2], [128.8, 310.5], [118.0, 337.0], [114.0, 372.0], [148.0, 352.0]],
        [[291.8, 212.3], [320.5, 194.3], [302.0, 229.0], [313.0, 249.0], [338.0, 234.0]],
        [[491.7, 320.3], [540.5, 333.7], [509.0, 366.0], [481.0, 369.0], [531.0, 380.0]],
        [[761.8, 398.7], [800.5, 403.8], [771.0, 431.0], [764.0, 436.0], [807.0, 442.0]],
        [[916.8, 117.8], [950.3, 114.7], [923.0, 148.0], [929.0, 176.0], [959.0, 169.0]],
        [[1149.3, 327.7], [1192.0, 324.8], [1164.0, 348.0], [1153.0, 367.0], [1196.0, 364.0]],
    ],
    "insightface_tom_hanks": [
        [[36.0, 51.7], [72.2, 50.0], [63.0, 78.0], [37.0, 92.0], [66.0, 91.0]],
    ],
    "skimage_astronaut": [
        [[203.2, 101.5], [246.5, 104.2], [225.0, 127.0], [201.0, 139.0], [246.0, 141.0]],
    ],
}


def package_photos() -> dict[str, Path]:
    """Real face photos shipped inside installed packages; only those present on disk."""
    found: dict[str, Path] = {}
    for name, (package, rel) in _PHOTOS.items():
        root = _package_dir(package)
        if root is not None and (root / rel).is_file():
            found[name] = root / rel
    return found


def package_landmarks() -> dict[str, np.ndarray]:
    """(F, 5, 2) landmarks of every face in each photo of `package_photos()`, same keys."""
    return {name: np.array(_LANDMARKS[name], dtype=np.float64) for name in package_photos()}


def load_photo(path: Path | str) -> np.ndarray:
    """Read an image file as RGB uint8."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
