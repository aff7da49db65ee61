"""Files written whole or not at all, images encoded in one place, and file digests."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from reelface.errors import ReelfaceError

try:  # ISA-L: lossless PNG 8× faster than OpenCV's, off the GIL (png.py); OpenCV without it
    from reelface import png as _png
except ImportError:  # pragma: no cover - isal is a dependency; kept optional for odd platforms
    _png = None

NAME_MAX = 255  # bytes in one file name on Linux filesystems
CHUNK = 1 << 20
T = TypeVar("T")


class EncodeError(ReelfaceError, ValueError):
    """An image could not be encoded (an unknown suffix or a broken array)."""


def temp_name(path: Path) -> Path:
    """A hidden name beside `path` (same filesystem, so the rename is atomic), per process."""
    tail = f".{os.getpid()}.part"
    stem = os.fsencode(path.name)[: NAME_MAX - len(tail) - 1].decode(errors="ignore")
    return path.with_name(f".{stem}{tail}")


def atomic_write(path: Path, data: bytes | list[bytes] | Callable[[Path], None]) -> None:
    """Write bytes, or pieces of bytes in order, (or let `data(tmp)` write a file) under a temp
    name, then rename into place.

    A failure at any point leaves the old file (or none) and no temp file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        if callable(data):
            data(tmp)
        else:
            with open(tmp, "wb") as handle:
                handle.writelines(data if isinstance(data, list) else [data])
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_folder(out: Path, fill: Callable[[Path], T]) -> T:
    """Build a folder under a temp name beside `out` with `fill(tmp)`, then rename it into place.

    `out` must be absent or empty; a failure leaves neither `out` nor the temp folder.
    """
    tmp = temp_name(out)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        result = fill(tmp)
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def encode(rgb: np.ndarray, suffix: str = ".png", quality: int | None = None) -> bytes:
    """RGB uint8 as PNG or JPEG bytes; `quality` is PNG's zlib level or JPEG's 0–100."""
    ext = suffix.lower()
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, quality] if quality is not None else []
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, quality] if quality is not None else []
    else:
        raise EncodeError(f"cannot write {ext or 'extension-less'} images; use .png or .jpg")
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise EncodeError(f"OpenCV could not encode an image as {ext}")
    return data.tobytes()


def encode_png_fast(rgb: np.ndarray, level: int) -> list[bytes]:
    """Lossless PNG as pieces for atomic_write: ISA-L at `level` (0–3) where installed, else
    OpenCV at zlib `level`."""
    if _png is not None:
        return _png.encode(rgb, level)
    return [encode(rgb, ".png", level)]


def write_image(path: Path, rgb: np.ndarray, quality: int | None = None) -> None:
    """Encode by the file's suffix and write atomically."""
    atomic_write(path, encode(rgb, Path(path).suffix, quality))


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks so large weights do not sit in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
