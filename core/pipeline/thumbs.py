"""Small previews of face crops for the terminal UI: made once, cached in the workspace."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from reelface import io

SIZE = 128  # enough for a 60-cell-wide half-block preview; a thumbnail is ~6 KB
QUALITY = 90


def thumbs_of(root: Path, folder: str) -> Path:
    """The thumbnail folder mirroring a workspace folder of crops."""
    return root / "cache" / "thumbs" / folder


def thumb_path(root: Path, crop_path: str) -> Path:
    """Where the thumbnail of a crop (path relative to the workspace) lives."""
    return thumbs_of(root, str(Path(crop_path).with_suffix(".jpg")))


def write_thumb(path: Path, rgb: np.ndarray) -> None:
    """Shrink an RGB crop to SIZE and write it as JPEG, atomically."""
    small = cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    io.write_image(path, small, QUALITY)


def read_thumb(root: Path, crop_path: str) -> np.ndarray | None:
    """The thumbnail as RGB if it has been made (~0.2 ms), else None."""
    path = thumb_path(root, crop_path)
    if not path.is_file():  # OpenCV would warn on stderr, over the TUI's screen
        return None
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_thumb(root: Path, crop_path: str) -> np.ndarray:
    """The thumbnail as RGB, made from the crop on first use (a 1024 PNG takes ~90 ms to decode)."""
    made = read_thumb(root, crop_path)
    if made is None:
        path = thumb_path(root, crop_path)
        crop = cv2.imread(str(root / crop_path), cv2.IMREAD_COLOR)
        if crop is None:
            raise FileNotFoundError(f"face crop missing: {root / crop_path}")
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        write_thumb(path, rgb)
        return cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return made
