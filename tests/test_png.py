"""The crop encoder: PNGs any decoder reads back to the same pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reelface import png, synth


def decoded(pieces: list) -> np.ndarray:
    data = np.frombuffer(b"".join(bytes(p) for p in pieces), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    assert image is not None, "OpenCV could not read the PNG"
    return image


def test_a_real_face_comes_back_pixel_for_pixel_in_every_layout() -> None:
    photo = synth.load_photo(synth.package_photos()["insightface_t1"])  # RGB
    rgba = np.dstack([photo, np.arange(photo.size // 3, dtype=np.uint8).reshape(photo.shape[:2])])
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    for level in range(4):
        assert np.array_equal(decoded(png.encode(photo, level))[..., ::-1], photo)
    assert np.array_equal(decoded(png.encode(rgba)), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert np.array_equal(decoded(png.encode(grey)), grey)


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 3, 3), (3, 7), (64, 1, 4)])
def test_noise_and_odd_sizes_survive(shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(len(shape)).integers(0, 256, shape, dtype=np.uint8)
    back = decoded(png.encode(image))
    if image.ndim == 3 and shape[2] == 3:
        back = back[..., ::-1]
    elif image.ndim == 3:
        back = cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA)
    assert np.array_equal(back.reshape(shape), image)


def test_a_view_is_encoded_as_what_it_shows() -> None:
    photo = synth.load_photo(synth.package_photos()["insightface_t1"])
    view = photo[10:200:2, 5:300:3]  # not contiguous
    assert np.array_equal(decoded(png.encode(view))[..., ::-1], view)


def test_what_png_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        png.encode(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="channels"):
        png.encode(np.zeros((4, 4, 2), np.uint8))
