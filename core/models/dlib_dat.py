"""dlib's serialisation of its face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat).

`parse` reads the bytes dlib's serialise() wrote for dnn_face_recognition_ex.cpp's anet_type
into its layers in forward order (weights as numpy arrays); `expected_kinds` is that layer
sequence, which dlib_onnx.py checks before it builds a graph. _FormatError (not that network)
never leaves the package: dlib_resnet.py turns it into a ModelError naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class _FormatError(ValueError):
    """The byte stream is not the dlib network this module knows."""


class _Reader:
    """Reads dlib's serialise() primitives from a byte buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise _FormatError(f"truncated at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def int(self) -> int:
        # dlib writes integers as one control byte (0x80 = negative, low nibble = byte count)
        # followed by that many little-endian magnitude bytes.
        control = self._take(1)[0]
        count = control & 0x0F
        if count > 8 or control & 0x70:
            raise _FormatError(f"bad integer control byte {control:#x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(count), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        # Scalar floats are portable: an int64 mantissa and an int16 exponent (value = m·2^e),
        # with exponents 32000..32002 reserved for +inf, -inf and NaN.
        mantissa, exponent = self.int(), self.int()
        special = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}
        if exponent in special:
            return special[exponent]
        return float(np.ldexp(float(mantissa), exponent))

    def string(self) -> str:
        length = self.int()
        if not 0 <= length <= 256:
            raise _FormatError(f"implausible string length {length} at byte {self.pos}")
        return self._take(length).decode("latin-1")

    def bool(self) -> bool:
        value = self._take(1)
        if value not in (b"0", b"1"):
            raise _FormatError(f"bad bool {value!r} at byte {self.pos - 1}")
        return value == b"1"

    def tensor(self) -> np.ndarray:
        # Tensors (version 2) carry their shape as ints, then raw little-endian float32s.
        version = self.int()
        if version != 2:
            raise _FormatError(f"unsupported tensor version {version} at byte {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        if min(shape) < 0 or count * 4 > len(self.data) - self.pos:
            raise _FormatError(f"bad tensor shape {shape} at byte {self.pos}")
        return np.frombuffer(self._take(count * 4), "<f4").reshape(shape).astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise _FormatError(f"unsupported alias_tensor version {version}")
        n, k, nr, nc = (self.int() for _ in range(4))
        return n, k, nr, nc


@dataclass
class Layer:
    """One dlib layer in forward order; kind "mark" stands for a tag or skip layer."""

    kind: str  # input, con, affine, relu, max_pool, avg_pool, add_prev, fc, mark
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    window: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)


@dataclass
class Network:
    means: np.ndarray  # (3,) R, G, B
    size: int
    layers: list[Layer]


def _read_details(reader: _Reader) -> Layer:
    name = reader.string()
    if name == "con_4":
        params = reader.tensor().ravel()
        filters, nr, nc = reader.int(), reader.int(), reader.int()
        stride = (reader.int(), reader.int())
        padding = (reader.int(), reader.int())
        shape = reader.alias()
        bias_shape = reader.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.float()
        size = int(np.prod(shape))
        if shape[0] != filters or shape[2:] != (nr, nc) or params.size != size + bias_shape[1]:
            raise _FormatError(f"con_ parameter count {params.size} does not fit {shape}")
        return Layer("con", params[:size].reshape(shape), params[size:], (nr, nc), stride, padding)
    if name == "affine_":
        params = reader.tensor().ravel()
        gamma, beta = reader.alias(), reader.alias()
        mode = reader.int()
        channels = gamma[1]
        if mode != 0 or params.size != 2 * channels or beta[1] != channels:
            raise _FormatError(f"affine_ in mode {mode} with {params.size} params is not handled")
        return Layer("affine", params[:channels], params[channels:])
    if name == "relu_":
        return Layer("relu")
    if name in ("max_pool_2", "avg_pool_2"):
        window = (reader.int(), reader.int())
        stride = (reader.int(), reader.int())
        padding = (reader.int(), reader.int())
        return Layer(name[:8], window=window, stride=stride, padding=padding)
    if name == "add_prev_":
        return Layer("add_prev")
    if name == "fc_2":
        outputs, inputs = reader.int(), reader.int()
        params = reader.tensor().ravel()
        weights, _biases = reader.alias(), reader.alias()
        mode = reader.int()
        for _ in range(4):
            reader.float()
        # bias mode 0 = FC_HAS_BIAS (bias after the weights), 1 = FC_NO_BIAS (fc_no_bias here).
        size = inputs * outputs
        if mode not in (0, 1) or weights[:2] != (inputs, outputs):
            raise _FormatError(f"fc_ with bias mode {mode} and weights {weights} is not handled")
        if params.size != size + (outputs if mode == 0 else 0):
            raise _FormatError(f"fc_ parameter count {params.size} does not fit {weights}")
        # dlib computes output = input (N×inputs) · W (inputs×outputs) [+ bias].
        bias = params[size:] if mode == 0 else None
        return Layer("fc", params[:size].reshape(inputs, outputs), bias)
    raise _FormatError(f"unexpected layer {name!r} at byte {reader.pos}")


def parse(data: bytes) -> Network:
    """Parse dlib's anet_type serialisation: loss header, nesting versions, then layers."""
    reader = _Reader(data)
    if reader.int() != 1:
        raise _FormatError("not a dlib loss-layer network")
    loss = reader.string()
    if loss != "loss_metric_2":
        raise _FormatError(f"loss layer {loss!r} is not loss_metric_2")
    reader.float(), reader.float()  # margin and distance threshold: training only
    # add_layer writes its version and then its subnetwork before its own details, so the file
    # opens with the versions of every layer, outermost first: 2 = add_layer, 1 = tag or skip
    # layer (which carry nothing else), 3 = the innermost add_layer sitting on the input layer.
    nesting: list[int] = []
    while True:
        version = reader.int()
        if version == 3:
            break
        if version not in (1, 2) or len(nesting) > 10_000:
            raise _FormatError(f"unexpected layer version {version}")
        nesting.append(version)
    if reader.string() != "input_rgb_image_sized":
        raise _FormatError("input layer is not input_rgb_image_sized")
    means = np.array([reader.float() for _ in range(3)], np.float32)
    rows, cols = reader.int(), reader.int()
    if rows != cols:
        raise _FormatError(f"input is {rows}×{cols}, not square")

    layers = [Layer("input")]
    for version in [3, *reversed(nesting)]:
        if version == 1:
            layers.append(Layer("mark"))
            continue
        layers.append(_read_details(reader))
        # add_layer bookkeeping: three flags and three (cleaned, empty) training tensors.
        reader.bool(), reader.bool(), reader.bool()
        for _ in range(3):
            reader.tensor()
        if version == 3:
            reader.int()  # sample expansion factor
    if reader.pos != len(data):
        raise _FormatError(f"{len(data) - reader.pos} bytes left after the network")
    return Network(means, rows, layers)


def expected_kinds() -> list[str]:
    """dnn_face_recognition_ex.cpp's anet_type, forward order, tags and skips as "mark"."""
    block = ["con", "affine", "relu", "con", "affine"]
    ares = ["mark", *block, "add_prev", "relu"]
    ares_down = ["mark", *block, "mark", "mark", "avg_pool", "add_prev", "relu"]
    kinds = ["input", "con", "affine", "relu", "max_pool"]
    kinds += ares * 3  # alevel4
    kinds += ares_down + ares * 3  # alevel3
    kinds += ares_down + ares * 2  # alevel2
    kinds += ares_down + ares * 2  # alevel1
    kinds += ares_down  # alevel0
    return [*kinds, "avg_pool", "fc"]
