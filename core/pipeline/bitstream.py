"""Which compressed packets are IDR pictures: after one, no earlier packet is needed again.

FFmpeg's keyframe flag is not enough: an open-GOP I-frame is flagged key, yet pictures after it
still refer to pictures before it. Only H.264 and HEVC are read (most films); nothing in FFmpeg
or PyAV exposes the NAL unit type of a packet without decoding it, hence these few lines.
"""

from __future__ import annotations

from collections.abc import Callable

# A packet's bytes, as PyAV's Packet gives them through the buffer protocol.
IsIdr = Callable[[memoryview], bool]

_H264_IDR = {5}
_HEVC_IDR = {19, 20}  # IDR_W_RADL, IDR_N_LP: leading pictures refer only to the IDR itself


def idr_test(codec: str, extradata: bytes | None) -> IsIdr | None:
    """A test for IDR packets of this stream, or None when the codec is not one we read."""
    if codec == "h264":
        nal_type, vcl, idr = (lambda b: b & 0x1F), range(1, 6), _H264_IDR
        size_at = 4  # avcC: lengthSizeMinusOne in the low two bits of byte 4
    elif codec == "hevc":
        nal_type, vcl, idr = (lambda b: (b >> 1) & 0x3F), range(0, 32), _HEVC_IDR
        size_at = 21  # hvcC: lengthSizeMinusOne in the low two bits of byte 21
    else:
        return None
    # MP4 and Matroska carry length-prefixed NAL units (their extradata starts with version 1);
    # MPEG-TS and raw streams carry start codes.
    length_size = 0
    if extradata and extradata[0] == 1 and len(extradata) > size_at:
        length_size = (extradata[size_at] & 3) + 1

    def first_vcl_is_idr(data: memoryview) -> bool:
        for header in _nal_headers(data, length_size):
            kind = nal_type(header)
            if kind in vcl:
                return kind in idr
        return False

    return first_vcl_is_idr


def _nal_headers(data: memoryview, length_size: int):
    """The first byte of each NAL unit in a packet, in order."""
    end = len(data)
    if length_size:
        pos = 0
        while pos + length_size < end:
            size = int.from_bytes(data[pos : pos + length_size], "big")
            yield data[pos + length_size]
            pos += length_size + size
        return
    raw = bytes(data[: min(end, 1 << 16)])  # parameter sets and SEI come first; slices soon after
    pos = raw.find(b"\x00\x00\x01")
    while 0 <= pos < len(raw) - 3:
        yield raw[pos + 3]
        pos = raw.find(b"\x00\x00\x01", pos + 3)
