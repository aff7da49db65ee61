"""Short real video files synthesised from real photos shipped inside installed packages.

A film is a list of shots; each shot moves a virtual camera (pan, zoom, roll, defocus) over one
photo while following one of its faces, and every frame comes with exact landmark truth.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

# Fill for frame pixels that the photo does not cover: mid-grey rather than black (black is
# read as a legitimate letterbox) and rather than a mirrored copy (which would add faces that
# are not in the truth).
FILL_RGB = (128, 128, 128)
# Below this zoom factor the photo is first area-resampled so the warp does not alias.
_PRESHRINK_BELOW = 0.8
# Encoders that accept x264/x265-style rate control options.
_CRF_CODECS = {"h264", "libx264", "hevc", "libx265"}


@dataclass(frozen=True)
class Pose:
    """Where the followed face sits in the frame."""

    centre: tuple[float, float]  # frame pixels of the midpoint between the two eyes
    eye_distance: float  # pixels between the eye centres in the frame
    roll: float = 0.0  # degrees, positive = counter-clockwise in the image


# eq=False: shots and truths hold arrays, which neither hash nor compare to a single bool.
@dataclass(frozen=True, eq=False)
class Shot:
    """One segment between two cuts: a camera move over one photo following one face."""

    photo: np.ndarray  # RGB uint8 source photo
    landmarks: np.ndarray  # (F, 5, 2): eye L, eye R, nose, mouth L, mouth R (L = image left)
    face: int  # which face the camera follows (index into landmarks)
    frames: int
    start: Pose
    end: Pose  # poses are interpolated linearly across the shot (pan, zoom, rotate)
    blur: float = 0.0  # Gaussian sigma in frame pixels applied to the whole frame
    label: str = "clean"  # free text carried into the truth, e.g. "blur", "tilt", "edge"
    # A side light over the followed face: brightness ×(1 ± light) across it, from the direction
    # (degrees, 0 = from the image's right) at the start to the one at the end. Unlike a pan or
    # a zoom, it changes what the aligned crop shows, as light changes faces in a film.
    light: float = 0.0
    light_from: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True, eq=False)
class FaceTruth:
    """One face of the photo mapped into a frame."""

    face: int  # index into the shot's landmarks
    landmarks: np.ndarray  # (5, 2) in frame pixels (may lie outside the frame)


@dataclass(frozen=True, eq=False)
class FrameTruth:
    """Ground truth of one frame in the file."""

    index: int  # frame index in the file
    shot: int
    label: str
    faces: tuple[FaceTruth, ...]  # every face of the photo, mapped into the frame


# ---------------------------------------------------------------------------------------------
# Rendering


def _validate_shot(shot: Shot) -> None:
    """Raise ValueError for a shot that cannot be rendered."""
    photo = np.asarray(shot.photo)
    if photo.dtype != np.uint8 or photo.ndim not in (2, 3) or min(photo.shape[:2]) < 2:
        raise ValueError(f"photo must be a uint8 image, got {photo.dtype} {photo.shape}")
    if photo.ndim == 3 and photo.shape[2] not in (1, 3):
        raise ValueError(f"photo must be RGB, got {photo.shape[2]} channels")
    lm = np.asarray(shot.landmarks)
    if lm.ndim != 3 or lm.shape[1:] != (5, 2) or lm.shape[0] == 0:
        raise ValueError(f"landmarks must be (F, 5, 2), got {lm.shape}")
    if not np.all(np.isfinite(lm)):
        raise ValueError("landmarks must be finite")
    if not 0 <= shot.face < lm.shape[0]:
        raise ValueError(f"face {shot.face} out of range for {lm.shape[0]} faces")
    if np.linalg.norm(lm[shot.face, 1] - lm[shot.face, 0]) < 1e-6:
        raise ValueError("followed face has coincident eyes")
    if shot.frames < 1:
        raise ValueError(f"a shot needs at least one frame, got {shot.frames}")
    for pose in (shot.start, shot.end):
        if not pose.eye_distance > 0 or not all(map(math.isfinite, (*pose.centre, pose.roll))):
            raise ValueError(f"invalid pose {pose}")
    if not 0 <= shot.light < 1:
        raise ValueError(f"light must be in [0, 1), got {shot.light}")
    if not shot.blur >= 0:
        raise ValueError(f"blur must be >= 0, got {shot.blur}")


def _pose_at(shot: Shot, t: float) -> Pose:
    """Linear interpolation of the shot's poses at t in [0, 1]."""
    a, b = shot.start, shot.end
    cx = a.centre[0] + (b.centre[0] - a.centre[0]) * t
    cy = a.centre[1] + (b.centre[1] - a.centre[1]) * t
    return Pose(
        centre=(cx, cy),
        eye_distance=a.eye_distance + (b.eye_distance - a.eye_distance) * t,
        roll=a.roll + (b.roll - a.roll) * t,
    )


def _similarity(landmarks: np.ndarray, pose: Pose) -> np.ndarray:
    """2×3 photo→frame similarity putting the followed face's eyes at `pose`."""
    left, right = landmarks[0].astype(np.float64), landmarks[1].astype(np.float64)
    mid = (left + right) / 2
    vec = right - left
    scale = pose.eye_distance / float(np.hypot(*vec))
    # Image y points down, so a counter-clockwise roll is a negative angle in pixel coordinates.
    angle = -math.radians(pose.roll) - math.atan2(vec[1], vec[0])
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    shift = np.asarray(pose.centre, dtype=np.float64) - rot @ mid
    return np.hstack([rot, shift[:, None]])


def _as_rgb(photo: np.ndarray) -> np.ndarray:
    """Photo as a contiguous H×W×3 uint8 array."""
    if photo.ndim == 2:
        return cv2.cvtColor(photo, cv2.COLOR_GRAY2RGB)
    if photo.shape[2] == 1:
        return cv2.cvtColor(photo[:, :, 0], cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(photo)


def _warp(photo: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp the photo into a frame of `size` with anti-aliasing when shrinking."""
    src = photo
    m = matrix
    zoom = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if zoom < _PRESHRINK_BELOW:
        # Lanczos alone aliases when shrinking; area-resample first, then fold the exact
        # resize mapping (pixel centres: p' = (p + 0.5) * k - 0.5) into the matrix.
        h, w = photo.shape[:2]
        nw, nh = max(2, round(w * zoom)), max(2, round(h * zoom))
        src = cv2.resize(photo, (nw, nh), interpolation=cv2.INTER_AREA)
        kx, ky = nw / w, nh / h
        inv_resize = np.array([[1 / kx, 0, 0.5 / kx - 0.5], [0, 1 / ky, 0.5 / ky - 0.5], [0, 0, 1]])
        m = matrix @ inv_resize
    return cv2.warpAffine(
        src,
        m,
        size,
        flags=cv2.INTER_LANCZOS4,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=FILL_RGB,
    )


def render_frame(shot: Shot, t: float, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """RGB frame at shot time t∈[0,1] and the 2×3 similarity matrix photo→frame."""
    _validate_shot(shot)
    width, height = int(size[0]), int(size[1])
    if width < 2 or height < 2:
        raise ValueError(f"frame size too small: {size}")
    pose = _pose_at(shot, min(max(float(t), 0.0), 1.0))
    matrix = _similarity(np.asarray(shot.landmarks)[shot.face], pose)
    frame = _warp(_as_rgb(np.asarray(shot.photo)), matrix, (width, height))
    if shot.light > 0:
        frame = _lit(frame, pose, shot.light, _lerp(*shot.light_from, t))
    if shot.blur > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), sigmaX=shot.blur, sigmaY=shot.blur)
    return frame, matrix


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * min(max(float(t), 0.0), 1.0)


def _lit(frame: np.ndarray, pose: Pose, strength: float, degrees: float) -> np.ndarray:
    """The frame under a side light: a brightness ramp across the face, flat beyond it."""
    height, width = frame.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a = math.radians(degrees)
    along = ((xx - pose.centre[0]) * math.cos(a) + (yy - pose.centre[1]) * math.sin(a)) / (
        2.0 * pose.eye_distance
    )
    gain = 1.0 + strength * np.clip(along, -1.0, 1.0)
    return np.clip(frame * gain[..., None], 0, 255).astype(np.uint8)


def _map_faces(landmarks: np.ndarray, matrix: np.ndarray) -> tuple[FaceTruth, ...]:
    """Every face's landmarks mapped through the photo→frame matrix."""
    pts = np.asarray(landmarks, dtype=np.float64)
    mapped = pts @ matrix[:, :2].T + matrix[:, 2]
    return tuple(FaceTruth(face=i, landmarks=mapped[i]) for i in range(len(mapped)))


# ---------------------------------------------------------------------------------------------
# Films


def truth_path(path: Path | str) -> Path:
    """Where `make_film` writes the truth JSON of the film at `path`."""
    return Path(path).with_suffix(".truth.json")


def _shot_dict(shot: Shot) -> dict[str, Any]:
    """JSON-ready description of a shot (without the photo)."""

    def pose(p: Pose) -> dict[str, Any]:
        return {"centre": list(p.centre), "eye_distance": p.eye_distance, "roll": p.roll}

    return {
        "label": shot.label,
        "frames": shot.frames,
        "face": shot.face,
        "faces": int(np.asarray(shot.landmarks).shape[0]),
        "photo_size": [int(shot.photo.shape[1]), int(shot.photo.shape[0])],
        "start": pose(shot.start),
        "end": pose(shot.end),
        "blur": shot.blur,
        "light": shot.light,
        "light_from": list(shot.light_from),
    }


def _frame_dict(ft: FrameTruth) -> dict[str, Any]:
    """JSON-ready frame truth."""
    return {
        "index": ft.index,
        "shot": ft.shot,
        "label": ft.label,
        "faces": [{"face": f.face, "landmarks": f.landmarks.tolist()} for f in ft.faces],
    }


def read_truth(path: Path | str) -> tuple[dict[str, Any], list[FrameTruth]]:
    """Load a truth JSON (or the truth of a film path): film-level fields and per-frame truth."""
    p = Path(path)
    if not p.name.endswith(".truth.json"):
        p = truth_path(p)
    data = json.loads(p.read_text())
    frames = [
        FrameTruth(
            index=int(f["index"]),
            shot=int(f["shot"]),
            label=str(f["label"]),
            faces=tuple(
                FaceTruth(face=int(x["face"]), landmarks=np.array(x["landmarks"], dtype=np.float64))
                for x in f["faces"]
            ),
        )
        for f in data["frames"]
    ]
    film = {k: v for k, v in data.items() if k != "frames"}
    return film, frames


def _temp_sibling(path: Path, suffix: str) -> Path:
    """Hidden unique name next to `path`, so os.replace stays on one filesystem."""
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{suffix}")


def make_film(
    path: Path,
    shots: Sequence[Shot],
    size: tuple[int, int] = (1280, 720),
    fps: int = 25,
    codec: str = "h264",
    gop: int = 50,
    encoder_options: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
) -> list[FrameTruth]:
    """Encode the shots back to back into `path` with PyAV; return per-frame truth.

    Also writes path.with_suffix('.truth.json'); both files appear atomically or not at all.
    `encoder_options` go to the encoder as they are (e.g. {"x264-params": "open-gop=1"});
    `pix_fmt` "yuv420p10le" with hevc gives a 10-bit film like a 4K master.
    """
    path = Path(path)
    width, height = int(size[0]), int(size[1])
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ValueError(f"frame size must be even and positive, got {size}")
    if fps < 1 or gop < 1:
        raise ValueError(f"fps and gop must be positive, got fps={fps} gop={gop}")
    if not shots:
        raise ValueError("a film needs at least one shot")
    for shot in shots:
        _validate_shot(shot)

    video_tmp = _temp_sibling(path, path.suffix)
    truth_file = truth_path(path)
    truth_tmp = _temp_sibling(truth_file, ".json")
    truth: list[FrameTruth] = []
    try:
        with av.open(str(video_tmp), mode="w") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height = width, height
            stream.pix_fmt = pix_fmt
            # Keep our own time base: the muxer rewrites stream.time_base (e.g. to 1/12800)
            # once the header is written, so frames must not borrow it.
            time_base = Fraction(1, fps)
            stream.codec_context.time_base = time_base
            stream.codec_context.gop_size = gop
            options = {"crf": "18"} if codec in _CRF_CODECS else {}
            if codec in ("hevc", "libx265"):
                options["x265-params"] = "log-level=error"  # x265 logs to stderr by default
            stream.options = {**options, **(encoder_options or {})}
            index = 0
            for shot_index, shot in enumerate(shots):
                for i in range(shot.frames):
                    t = i / (shot.frames - 1) if shot.frames > 1 else 0.0
                    rgb, matrix = render_frame(shot, t, (width, height))
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    frame.pts = index
                    frame.time_base = time_base
                    container.mux(stream.encode(frame))
                    faces = _map_faces(shot.landmarks, matrix)
                    truth.append(FrameTruth(index, shot_index, shot.label, faces))
                    index += 1
            container.mux(stream.encode(None))  # flush delayed (B-)frames

        doc = {
            "size": [width, height],
            "fps": fps,
            "codec": codec,
            "gop": gop,
            "frame_count": len(truth),
            "shot_labels": [s.label for s in shots],
            "shots": [_shot_dict(s) for s in shots],
            "frames": [_frame_dict(ft) for ft in truth],
        }
        truth_tmp.write_text(json.dumps(doc))
        os.replace(video_tmp, path)
        os.replace(truth_tmp, truth_file)
    finally:
        for tmp in (video_tmp, truth_tmp):
            tmp.unlink(missing_ok=True)
    return truth
