"""SCRFD face detector with five landmarks (the embedded default and insightface's det_*.onnx)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from . import runtime
from .base import Detection, ModelError, ModelFile
from .digests import sha256_of

STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2
NMS_IOU = 0.4


def make_dynamic(source: Path, target: Path) -> None:
    """Rewrite a fixed 1×3×640×640 SCRFD graph so batch, height and width are free.

    The registry's scrfd.onnx bakes 640×640 into its two upsampling nodes and batch 1 into its
    output reshapes; every other op is convolutional, so freeing those lets us detect at the
    smallest input that still finds the faces we keep, and batch frames.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    for dim, name in zip(
        graph.input[0].type.tensor_type.shape.dim, ("N", "C", "H", "W"), strict=True
    ):
        if name != "C":
            dim.ClearField("dim_value")
            dim.dim_param = name
    for node in graph.node:
        if node.op_type == "Resize" and len(node.input) == 4 and node.input[3]:
            roi = helper.make_tensor(f"{node.name}_roi", onnx.TensorProto.FLOAT, [0], [])
            scales = numpy_helper.from_array(
                np.array([1, 1, 2, 2], np.float32), f"{node.name or node.output[0]}_scales"
            )
            graph.initializer.extend([roi, scales])
            del node.input[1:]
            node.input.extend([roi.name, scales.name])
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]]).copy()
            if shape[0] == 1:
                shape[0] = 0  # 0 = keep the batch dimension as it comes
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    del graph.value_info[:]
    for output in graph.output:
        for index, dim in enumerate(output.type.tensor_type.shape.dim):
            dim.ClearField("dim_value")
            dim.dim_param = f"{output.name}_{index}"
    onnx.checker.check_model(model)
    runtime.save_model(model, target)


def canvas(shape: tuple[int, int], input_size: int) -> tuple[float, int, int]:
    """Scale factor and padded input (height, width): longer side `input_size`, multiples of 32."""
    scale = input_size / max(shape)
    height = int(np.ceil(shape[0] * scale / 32) * 32)
    width = int(np.ceil(shape[1] * scale / 32) * 32)
    return scale, height, width


def letterbox(image: np.ndarray, scale: float, out: np.ndarray) -> None:
    """Write an RGB image scaled by `scale` into the (3, H, W) input `out`, padding included."""
    new_h, new_w = round(image.shape[0] * scale), round(image.shape[1] * scale)
    if image.shape[:2] != (new_h, new_w):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    out[:, :new_h, :new_w] = image.transpose(2, 0, 1)
    out[:, :new_h, :new_w] -= 127.5
    out[:, :new_h, :new_w] /= 128.0
    out[:, new_h:, :] = 0.0  # padding = mid-grey after normalisation
    out[:, :new_h, new_w:] = 0.0


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    order = scores.argsort()[::-1]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        x1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        overlap = inter / (areas[best] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


class ScrfdDetector:
    """SCRFD on onnxruntime; images are letterboxed to a multiple of 32 and batched by shape."""

    def __init__(self, path: Path, name: str = "scrfd", device: int | None = None) -> None:
        self.path = path
        self.session = runtime.session(path, device)
        inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        if len(inputs) != 1 or len(outputs) not in (9, 6):
            raise ModelError(f"{path} is not an SCRFD detector (expected 1 input, 9 outputs)")
        self.has_landmarks = len(outputs) == 9
        if not self.has_landmarks:
            raise ModelError(f"{path} is an SCRFD detector without landmarks; reelface needs 5")
        shape = inputs[0].shape
        self.fixed = isinstance(shape[2], int) and isinstance(shape[3], int)
        # Some exports squeeze the batch axis out of the outputs; those can only take one image.
        self.fixed_batch = (
            isinstance(shape[0], int) or len(self.session.get_outputs()[0].shape) == 2
        )
        self.input_name = inputs[0].name
        self.output_names = outputs
        self.name = name
        self.files = (ModelFile("detector", name, str(path), sha256_of(path)),)

    def _canvas(self, shape: tuple[int, int], input_size: int) -> tuple[float, int, int]:
        """Scale factor and padded canvas (height, width) for an image of `shape`."""
        if self.fixed:
            input_size = int(self.session.get_inputs()[0].shape[2])
            return input_size / max(shape), input_size, input_size
        return canvas(shape, input_size)

    def detect(
        self, images: list[np.ndarray], input_size: int, threshold: float
    ) -> list[list[Detection]]:
        """Detect in each RGB image scaled so its longer side is `input_size`."""
        results: list[list[Detection]] = [[] for _ in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(image.shape[:2], []).append(index)
        for shape, indices in groups.items():
            scale, height, width = self._canvas(shape, input_size)
            blob = np.empty((len(indices), 3, height, width), np.float32)
            for row, index in enumerate(indices):
                letterbox(images[index], scale, blob[row])
            step = 1 if self.fixed_batch else len(indices)
            for start in range(0, len(indices), step):
                outs = self.session.run(
                    self.output_names, {self.input_name: blob[start : start + step]}
                )
                outs = [o if o.ndim == 3 else o[None] for o in outs]
                for row in range(outs[0].shape[0]):
                    results[indices[start + row]] = self._decode(
                        [o[row] for o in outs], height, width, scale, threshold
                    )
        return results

    def _decode(
        self, outs: list[np.ndarray], height: int, width: int, scale: float, threshold: float
    ) -> list[Detection]:
        scores_all, boxes_all, kps_all = [], [], []
        for level, stride in enumerate(STRIDES):
            scores = outs[level].reshape(-1)
            hit = np.where(scores >= threshold)[0]
            if not hit.size:
                continue
            # Anchors run row by row, ANCHORS_PER_CELL per cell, centred on the cell's corner.
            cell = hit // ANCHORS_PER_CELL
            cols = width // stride
            c = np.stack([cell % cols, cell // cols], axis=1).astype(np.float32) * stride
            dist = outs[level + 3].reshape(-1, 4)[hit] * stride
            kps = outs[level + 6].reshape(-1, 10)[hit] * stride
            boxes = np.concatenate([c - dist[:, :2], c + dist[:, 2:]], axis=1)
            points = np.tile(c, 5) + kps
            scores_all.append(scores[hit])
            boxes_all.append(boxes)
            kps_all.append(points.reshape(-1, 5, 2))
        if not scores_all:
            return []
        scores = np.concatenate(scores_all)
        boxes = np.concatenate(boxes_all) / scale
        kps = np.concatenate(kps_all) / scale
        keep = _nms(boxes, scores, NMS_IOU)
        return [
            Detection(boxes[i].astype(np.float32), float(scores[i]), kps[i].astype(np.float32))
            for i in keep
        ]
