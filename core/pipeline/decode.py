"""Frame sources: a film decoded with PyAV (threaded, sampled frames only) or an image folder."""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from reelface.errors import ReelfaceError
from reelface.pipeline import bitstream

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
HASH_CHUNK = 8 << 20
PROBED_STREAMS = 32  # stream options are given per stream index; films rarely have more
MAX_HELD_BYTES = 64 << 20  # compressed packets kept back while looking for the next IDR
FINGERPRINT_PACKETS = 64  # a few seconds of a film: enough to tell two encodes apart


class SourceError(ReelfaceError, RuntimeError):
    """The source cannot be read as a film or an image folder; the message says why."""


# The coarse detector's input: the longer side, in pixels, for a frame of (height, width).
PreviewSide = Callable[[tuple[int, int]], int]


@dataclass(frozen=True)
class Frame:
    """A sampled frame: a small RGB preview for the coarse pass, full pixels made on first use.

    A film's frame stays as the decoder gave it until a face needs it in full: many sampled
    frames only ever need the preview, which FFmpeg scales straight from the decoded planes.
    """

    index: int
    pts: float | None  # seconds from the start; None for still images
    source: str | None  # the image file name for image folders
    shape: tuple[int, int]  # (height, width) of the full frame
    preview: np.ndarray  # RGB, its longer side the coarse detector's input
    decoded: Any  # an RGB array, or PyAV's frame (converted with its own colour tags)

    @property
    def empty(self) -> bool:
        return self.shape[0] * self.shape[1] == 0

    @functools.cached_property
    def pixels(self) -> np.ndarray:
        """What faces are cut from (align.warp): a film's frame as RGBA, which FFmpeg makes as
        fast as RGB and OpenCV warps faster; an image's RGB as it is."""
        if isinstance(self.decoded, np.ndarray):
            return self.decoded
        return _reformatter().reformat(self.decoded, format="rgba").to_ndarray()


_reformatters = threading.local()


@dataclass(frozen=True)
class FilmInfo:
    """What probing a source tells before extraction."""

    path: str
    kind: str
    size_bytes: int
    content_hash: str
    duration: float | None
    fps: float | None
    width: int | None
    height: int | None
    codec: str | None
    frames_total: int | None


def _reformatter():  # -> av.video.reformatter.VideoReformatter
    """This thread's FFmpeg scaler, kept: set up anew for each frame it cost a third more here."""
    if not hasattr(_reformatters, "one"):
        from av.video.reformatter import VideoReformatter

        _reformatters.one = VideoReformatter()
    return _reformatters.one


def preview_size(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """(width, height) with the longer side `side`; never larger than `shape`."""
    height, width = shape
    scale = min(1.0, side / max(height, width, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def rgb_frame(index: int, source: str | None, rgb: np.ndarray, side: PreviewSide) -> Frame:
    """A still image as a Frame, its preview area-averaged by OpenCV."""
    shape = (rgb.shape[0], rgb.shape[1])
    size = preview_size(shape, side(shape)) if rgb.size else (shape[1], shape[0])
    preview = rgb
    if size != (shape[1], shape[0]):
        preview = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return Frame(index, None, source, shape, preview, rgb)


def video_frame(frame, index: int, seconds: float | None, side: PreviewSide) -> Frame:
    """A decoded PyAV frame as a Frame, kept in the decoder's format until a face needs RGB."""
    shape = (frame.height, frame.width)
    width, height = preview_size(shape, side(shape))
    scaled = _reformatter().reformat(frame, width, height, "rgb24", interpolation="AREA")
    return Frame(index, seconds, None, shape, scaled.to_ndarray(), frame)


def content_hash(path: Path) -> str:
    """Identity of a source: size plus the first and last 8 MiB, so a 50 GB film hashes at once.

    A film re-encoded or cut changes its head or tail; the same file copied elsewhere keeps it.
    """
    digest = hashlib.sha256()
    if path.is_dir():
        for item in image_files(path):
            digest.update(item.name.encode())
            digest.update(content_hash(item).encode())
        return digest.hexdigest()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(HASH_CHUNK))
        if size > 2 * HASH_CHUNK:
            handle.seek(-HASH_CHUNK, os.SEEK_END)
            digest.update(handle.read(HASH_CHUNK))
    return digest.hexdigest()


def fingerprint(path: Path, packets: int = FINGERPRINT_PACKETS) -> list[str]:
    """SHA-256 (16 hex digits) of a film's first video packets, read without decoding.

    A truncated or remuxed copy of a film keeps its packets, so the lists of the two share a
    start (a re-encode does not); `catalogue.same_start` compares them.
    """
    try:
        with open_film(path) as container:
            stream = container.streams.video[0]
            found = itertools.islice((p for p in container.demux(stream) if p.size), packets)
            return [hashlib.sha256(bytes(p)).hexdigest()[:16] for p in found]
    except Exception:  # PyAV raises many FFmpeg error types; a film we cannot read has none
        return []


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{path}: not readable (check its permissions)")


def open_film(path: Path, hwaccel=None):  # -> av.container.InputContainer
    """Open a film for reading.

    FFmpeg's stream probing decodes up to a few dozen frames to learn what an H.264 header
    already says (22 ms of a 1080p film's start here, every time it is opened); told to look at
    keyframes only, it decodes none in common files and still can where a header says too little.
    """
    import av

    return av.open(
        str(path),
        metadata_errors="ignore",
        hwaccel=hwaccel,
        stream_options=[{"skip_frame": "nonkey"}] * PROBED_STREAMS,
    )


def probe(path: Path) -> FilmInfo:
    """Read a source's metadata, or raise SourceError with a one-line reason."""
    _check_readable(path)
    path = path.resolve()
    if path.is_dir():
        images = image_files(path)
        if not images:
            raise SourceError(
                f"{path}: no images in this folder ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        return FilmInfo(
            str(path),
            "images",
            sum(p.stat().st_size for p in images),
            content_hash(path),
            None,
            None,
            None,
            None,
            None,
            len(images),
        )
    size = path.stat().st_size
    if size == 0:
        raise SourceError(f"{path}: empty file (0 bytes); was the copy interrupted?")
    # Hashed beside FFmpeg's import and probing: reading and SHA-256 leave the GIL (6 ms of a
    # 1080p film's start here).
    with ThreadPoolExecutor(1) as pool:
        return _probe_video(path, size, pool.submit(content_hash, path))


def _probe_video(path: Path, size: int, hashed: Future[str]) -> FilmInfo:
    """What FFmpeg says of a film, with its size and content hash, or SourceError."""
    try:
        with open_film(path) as container:
            streams = container.streams.video
            if not streams:
                raise SourceError(f"{path}: no video stream (is this a film?)")
            stream = streams[0]
            if stream.codec_context is None:
                raise SourceError(
                    f"{path}: unsupported video codec: FFmpeg has no decoder for it; "
                    "convert it with `ffmpeg -i IN -c:v libx264 OUT.mkv`"
                )
            stream.thread_type = "SLICE"  # frame threading would decode several frames first
            codec = stream.codec_context.name
            fps = float(stream.average_rate or stream.guessed_rate or 0) or None
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            frames = stream.frames or (round(duration * fps) if duration and fps else None)
            width, height = stream.codec_context.width, stream.codec_context.height
            # Decode the first picture: a file whose header parses but whose data does not is
            # caught here. Not waiting for it to leave the decoder's reordering saves a 1080p
            # film two more pictures (10 ms).
            first = next(p for p in container.demux(stream) if p.size)
            stream.codec_context.decode(first)
    except SourceError:
        raise
    except StopIteration:
        raise SourceError(f"{path}: no decodable video frame (truncated or corrupt file)") from None
    except Exception as error:  # PyAV raises many FFmpeg error types
        raise SourceError(f"{path}: not a readable video ({_first_line(error)})") from error
    return FilmInfo(
        str(path), "video", size, hashed.result(), duration, fps, width, height, codec, frames
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 image, or SourceError naming the file."""
    try:
        data = np.fromfile(path, np.uint8)  # np.fromfile + imdecode copes with any file name
    except OSError as error:
        raise SourceError(f"{path}: cannot read it ({error.strerror or error})") from error
    # Silent: a damaged file is reported once, by name (Stats.unreadable), not by libpng's noise.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    finally:
        cv2.utils.logging.setLogLevel(level)
    if image is None:
        raise SourceError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_frames(folder: Path, start: int, side: PreviewSide) -> Iterator[Frame]:
    """Each image of a folder, sorted by name, as one frame; unreadable images come empty."""
    for index, item in enumerate(image_files(folder)):
        if index < start:
            continue
        try:
            rgb = read_image(item)
        except SourceError:
            rgb = np.zeros((0, 0, 3), np.uint8)
        yield rgb_frame(index, item.name, rgb, side)


def hwaccel_problem(path: Path, device: str) -> str | None:
    """Why decoding on `device` (e.g. "cuda") cannot work for this film, or None if it can."""
    import av
    from av.codec.hwaccel import HWAccel, hwdevices_available

    if device not in hwdevices_available():
        return f"this FFmpeg has no {device!r} decoder (it has: {', '.join(hwdevices_available())})"
    try:
        with av.open(str(path), hwaccel=HWAccel(device_type=device)) as container:
            next(container.decode(container.streams.video[0]))
    except Exception as error:  # device creation and decoding raise various FFmpeg errors
        return f"{device} decoding failed ({_first_line(error)})"
    return None


def next_multiple(index: int, interval: int) -> int:
    """The first multiple of `interval` after frame `index` (0 before the film starts)."""
    return 0 if index < 0 else (index // interval + 1) * interval


def video_frames(
    path: Path,
    interval: int,
    side: PreviewSide,
    after: int = -1,
    exact: bool = False,
    threading: str = "SLICE",
    hwaccel: str = "",
    until: int | None = None,
) -> Iterator[Frame]:
    """Sampled frames of a film, one per multiple of `interval`, strictly after frame `after`.

    By default the decoder skips non-reference frames (most B-frames), which nothing else needs,
    and each multiple of `interval` takes the first decoded frame at or past it: the density the
    user asked for at a fraction of the decoding. `exact` decodes everything and takes exact
    multiples. The multiples are fixed by the file alone, so a resumed run, or a segment
    (`after`, `until`: the multiples from after + 1 up to, not including, `until`), takes the
    same frames as one run over the whole film (pipeline/segments.py merges them).
    """
    accel = None
    if hwaccel:
        from av.codec.hwaccel import HWAccel

        # Frames are downloaded to host memory: the detector reads them from there.
        accel = HWAccel(device_type=hwaccel, allow_software_fallback=True)
    container = open_film(path, accel)
    try:
        stream = container.streams.video[0]
        codec = stream.codec_context
        # Slice threading decoded 1080p H.264 1.6× faster than frame threading here, where
        # skipped frames leave frame threads idle (bench/extract.py's films, 2 cores).
        stream.thread_type = threading
        is_idr = None
        if not exact and interval > 1:
            codec.skip_frame = "NONREF"
            is_idr = bitstream.idr_test(codec.name, codec.extradata)
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        base = stream.time_base
        start_pts = stream.start_time or 0

        def index_of(pts: int) -> int:
            return round(float((pts - start_pts) * base) * fps)

        target = next_multiple(after, interval)
        if after >= 0:
            # Seek to the keyframe before the resume point; frames up to `after` are dropped below.
            seconds = max(0.0, (after - 2 * interval) / fps)
            container.seek(int(seconds / base) + start_pts, stream=stream, backward=True)
        counter = -1
        held: list = []  # packets before the next target, not decoded yet
        held_bytes = 0
        for packet in container.demux(stream):
            if is_idr is not None and packet.pts is not None and packet.size:
                position = index_of(packet.pts)
                if position <= target and packet.is_keyframe and is_idr(memoryview(packet)):
                    # Nothing from the IDR on refers to what came before it, and none of that
                    # is sampled (all of it lies before the target): not decoding it is free.
                    held, held_bytes = [], 0
                if position < target and held_bytes < MAX_HELD_BYTES:
                    held.append(packet)
                    held_bytes += packet.size
                    continue
            if packet.size or packet.dts is not None:
                held.append(packet)
            else:  # the end: what is held lies before the target, so only the decoder's
                held = [packet]  # delayed frames are left to drain
            todo, held, held_bytes = held, [], 0
            for frame in (f for p in todo for f in codec.decode(p)):
                counter += 1
                if frame.pts is not None:
                    index = index_of(frame.pts)
                elif after < 0:
                    index = counter
                else:
                    continue
                if index <= after or index < target:
                    continue
                if exact and index % interval:
                    continue
                if until is not None and target >= until:
                    return  # the next multiple is the next segment's
                target = next_multiple(index, interval)
                seconds = float((frame.pts - start_pts) * base) if frame.pts is not None else None
                yield video_frame(frame, index, seconds, side)
    finally:
        container.close()
