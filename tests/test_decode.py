"""Sampling a film: skipping what no sampled frame needs must not change which frames are taken."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from reelface import synth
from reelface.pipeline import bitstream, decode
from reelface.synth import demo

SIZE = (640, 360)
OPEN_GOP = {"x264-params": "open-gop=1:keyint=24:min-keyint=24:scenecut=0"}


def side(_shape: tuple[int, int]) -> int:
    return 160


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same real faces encoded with closed GOPs (IDR keyframes) and with open GOPs."""
    folder = tmp_path_factory.mktemp("gops")
    shots = demo.scenario(*SIZE, eye=60, frames=40)[:4]
    out = {"closed": folder / "closed.mp4", "open": folder / "open gop.mkv"}
    synth.make_film(out["closed"], shots, size=SIZE, gop=18)
    synth.make_film(out["open"], shots, size=SIZE, gop=24, encoder_options=OPEN_GOP)
    return out


def keyframes(path: Path) -> tuple[int, int]:
    """(keyframe packets, of which IDR) as the demuxer flags them and the bitstream says."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        is_idr = bitstream.idr_test(stream.codec_context.name, stream.codec_context.extradata)
        assert is_idr is not None
        flagged = [p for p in container.demux(stream) if p.size and p.is_keyframe]
        return len(flagged), sum(is_idr(memoryview(p)) for p in flagged)


def test_idr_packets_are_told_from_open_gop_keyframes(films: dict[str, Path]) -> None:
    keys, idr = keyframes(films["closed"])
    assert keys == idr > 5
    keys, idr = keyframes(films["open"])
    assert keys > 5 and idr == 1  # only the first picture: later I-frames are open


def test_codecs_without_a_reader_are_never_skipped() -> None:
    assert bitstream.idr_test("mpeg2video", None) is None
    assert bitstream.idr_test("vp9", b"\x01\x02") is None


def reference(path: Path, interval: int, after: int) -> list[tuple[int, np.ndarray]]:
    """Every reference frame decoded; the first at or past each multiple of interval taken."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        fps, base = float(stream.average_rate), stream.time_base
        target, out = (after // interval + 1) * interval if after >= 0 else 0, []
        for frame in container.decode(stream):
            index = round(float(frame.pts * base) * fps)
            if index > after and index >= target:
                out.append((index, frame.to_ndarray(format="rgb24")))
                target = (index // interval + 1) * interval
        return out


@pytest.mark.parametrize("gop", ["closed", "open"])
@pytest.mark.parametrize(("interval", "after"), [(5, -1), (13, -1), (30, -1), (13, 61)])
def test_sampled_frames_are_those_of_decoding_every_reference_frame(
    films: dict[str, Path], gop: str, interval: int, after: int
) -> None:
    expected = reference(films[gop], interval, after)
    got = list(decode.video_frames(films[gop], interval, side, after))
    assert [f.index for f in got] == [i for i, _ in expected]
    for frame, (_, rgb) in zip(got, expected, strict=True):
        # What faces are cut from: the decoded colours, with an alpha channel OpenCV warps faster.
        assert frame.pixels.shape == (*rgb.shape[:2], 4)
        assert np.array_equal(frame.pixels[..., :3], rgb), (
            f"frame {frame.index} decoded differently"
        )


@pytest.mark.parametrize("gop", ["closed", "open"])
@pytest.mark.parametrize("interval", [5, 13])
def test_segments_together_take_the_frames_of_one_run(
    films: dict[str, Path], gop: str, interval: int
) -> None:
    """A film cut anywhere (not only at keyframes) samples the same frames, none twice."""
    whole = [f.index for f in decode.video_frames(films[gop], interval, side)]
    for cuts in ([47], [30, 61, 100], [1, 2, 3]):
        bounds = [0, *cuts, None]
        parts: list[int] = []
        for start, until in zip(bounds, bounds[1:], strict=False):
            got = [f.index for f in decode.video_frames(films[gop], interval, side, start - 1,
                                                        until=until)]  # fmt: skip
            parts += [i for i in got if not parts or i > parts[-1]]  # a frame two multiples share
        assert parts == whole, f"cut at {cuts}"
