"""dlib's parsed face-recognition ResNet as an ONNX graph: uint8 NHWC RGB crops in, raw 128-d
descriptors out, each convolution with its affine layer (and the first with the input's mean
subtraction) folded in, and dlib's zero-padded residual adds spelled out."""

from __future__ import annotations

import numpy as np

from .dlib_dat import Layer, Network, _FormatError, expected_kinds

DIM = 128
OPSET = 17


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


def build_graph(net: Network):  # -> onnx.ModelProto
    """Turn the parsed layers into an ONNX graph: uint8 NHWC RGB crops in, raw descriptors out."""
    import onnx
    from onnx import TensorProto, helper

    layers = net.layers
    kinds = [layer.kind for layer in layers]
    if kinds != expected_kinds():
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
            weight, bias = weight.astype(np.float32), bias.astype(np.float32)
            params = [g.const(weight, "w"), g.const(bias, "b")]
            x, shape = _windowed(g, "Conv", [x, *params], "conv", weight.shape[0], shape, layer)
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
            pooled, pooled_shape = _windowed(
                g, op, [source], op.lower(), source_shape[0], source_shape, layer
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


def _windowed(
    g: _GraphBuilder,
    op: str,
    inputs: list[str],
    stem: str,
    channels: int,
    shape: tuple[int, int, int],
    layer: Layer,
) -> tuple[str, tuple[int, int, int]]:
    """A Conv or pooling node with `layer`'s window, stride and padding, and its output shape."""
    out = g.node(
        op,
        inputs,
        stem,
        kernel_shape=list(layer.window),
        strides=list(layer.stride),
        pads=[*layer.padding, *layer.padding],
    )
    # dlib's conv and pooling output size, the same floor rule ONNX uses.
    size = [
        1 + (shape[axis + 1] + 2 * layer.padding[axis] - layer.window[axis]) // layer.stride[axis]
        for axis in (0, 1)
    ]
    return out, (channels, size[0], size[1])


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
