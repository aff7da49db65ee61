"""int8 copies of the embedded models for the CPU, calibrated on real photos.

The int8 SCRFD runs 2.5× faster than float32 at the sizes extraction uses on a CPU with AVX-512
VNNI, 1.4× on one with AVX2 alone; the int8 dlib ResNet takes 1.5 against 2.9 ms a face (VNNI),
its descriptors within cosine 0.998 of float32's. Weights are quantised per channel to 7 bits;
activations over the ranges they take on the calibration photos, fed the ways each model is: for
the detector whole frames at coarse sizes and squares around single faces, for the embedder the
faces' aligned chips.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from .scrfd import ScrfdDetector, canvas, letterbox

OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear need it; SCRFD ships at opset 11
FRAME_SIDES = (160, 192, 256, 320, 640)
# Squares around each face: the refinement pass's framing (1.6 boxes at 256 px) and wider and
# tighter ones at other sizes. Without large faces the stride-32 scores were clipped at 0.38.
FACE_CONTEXTS = (1.2, 1.6, 2.5, 4.0)
FACE_SIDES = (128, 256, 416, 640)
FACES_PER_PHOTO = 10
# Bumped whenever the calibration inputs or the settings below change, so old copies are rebuilt.
RECIPE = 3


def calibration_inputs(detector: ScrfdDetector, photos: Sequence[np.ndarray]) -> Iterator:
    """Network inputs (1, 3, H, W): each photo whole at coarse sizes, then each face framed.

    Faces at several widths and input sizes reach every stride of the network at full score.
    """
    for photo in photos:
        for side in FRAME_SIDES:
            scale, height, width = canvas(photo.shape[:2], side)
            blob = np.empty((1, 3, height, width), np.float32)
            letterbox(photo, scale, blob[0])
            yield blob
        for face in detector.detect([photo], 640, 0.5)[0][:FACES_PER_PHOTO]:
            centre = (face.box[:2] + face.box[2:]) / 2
            box = float(max(face.box[2:] - face.box[:2]))
            for context, side in itertools.product(FACE_CONTEXTS, FACE_SIDES):
                scale = side / (context * box)
                matrix = np.array(
                    [
                        [scale, 0, side / 2 - scale * centre[0]],
                        [0, scale, side / 2 - scale * centre[1]],
                    ]
                )
                square = cv2.warpAffine(photo, matrix, (side, side), flags=cv2.INTER_AREA)
                blob = np.empty((1, 3, side, side), np.float32)
                letterbox(square, 1.0, blob[0])
                yield blob


def make_int8(source: Path, target: Path, photos: Sequence[np.ndarray]) -> None:
    """Write an int8 (QDQ) copy of the dynamic-shape SCRFD at `source` to `target`, atomically."""
    import onnx
    from onnx import version_converter

    detector = ScrfdDetector(source)
    inputs = ({detector.input_name: blob} for blob in calibration_inputs(detector, photos))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        upgraded = Path(tmp) / "opset13.onnx"
        onnx.save(version_converter.convert_version(onnx.load(str(source)), OPSET), upgraded)
        _quantise(upgraded, target, inputs, Path(tmp))


def make_int8_embedder(source: Path, target: Path, chips: Iterable[np.ndarray]) -> None:
    """Write an int8 (QDQ) copy of the dlib ResNet graph at `source` to `target`, atomically,
    calibrated on aligned 150 px chips."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        _quantise(source, target, ({"crops": chip[None]} for chip in chips), Path(tmp))


def _quantise(graph: Path, target: Path, inputs: Iterator[dict], tmp: Path) -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return next(inputs, None)

    # The quantiser gives advice on the root logger, and onnxruntime on stderr, every time.
    logging.disable(logging.WARNING)
    ort.set_default_logger_severity(3)
    try:
        out = tmp / target.name
        # Every setting spelled out: a release that changes a default must not change the model.
        quantize_static(
            graph,
            out,
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            # 7-bit weights: without VNNI (AVX2 alone) the u8×s8 products of 8-bit ones
            # saturate, and landmarks of small faces moved by 8 % of the face (AMD EPYC).
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={
                "ActivationSymmetric": False,
                "WeightSymmetric": True,
                "CalibMovingAverage": False,
                "CalibTensorRangeSymmetric": False,
                "AddQDQPairToWeight": False,
                "DedicatedQDQPair": False,
                "ForceQuantizeNoInputCheck": False,
                "MatMulConstBOnly": False,
            },
        )
        os.replace(out, target)
    finally:
        logging.disable(logging.NOTSET)
        ort.set_default_logger_severity(2)
