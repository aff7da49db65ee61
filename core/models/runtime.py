"""onnxruntime sessions: CUDA when the machine has it, CPU otherwise."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from reelface.io import temp_name

from . import optimised
from .base import ModelError

RUNTIME_HINT = "pip install 'reelface[cpu]' (or 'reelface[gpu]' on a CUDA server)"


def onnxruntime():  # -> the onnxruntime module
    """onnxruntime, whichever build the extra installed; one line naming the fix when none is."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise ModelError(f"onnxruntime is not installed: {RUNTIME_HINT}") from error
    return ort


def providers(device: int | None = None) -> list:
    """The execution providers to ask for, best first; `device` picks the GPU (default 0)."""
    available = onnxruntime().get_available_providers()
    out: list = []
    if cuda_available():
        cuda = "CUDAExecutionProvider"
        out.append((cuda, {"device_id": device}) if device is not None else cuda)
    if "CPUExecutionProvider" in available:
        out.append("CPUExecutionProvider")
    return out or available


def cuda_available() -> bool:
    return "CUDAExecutionProvider" in onnxruntime().get_available_providers()


def session(path: Path, device: int | None = None):  # -> onnxruntime.InferenceSession
    """Open an ONNX file, turning every load failure into one line that names the file."""
    ort = onnxruntime()

    if not path.is_file():
        raise ModelError(f"model file not found: {path} (run `reelface models install`)")
    chosen = providers(device)
    if chosen == ["CPUExecutionProvider"]:
        ready = optimised.ready_path(path, ort.__version__)
        if ready.is_file():
            with contextlib.suppress(Exception):  # a damaged copy is made again below
                return ort.InferenceSession(
                    str(ready), _options(ort, rewrite=False), providers=chosen
                )
        if optimised.writable(ready):
            tmp = temp_name(ready)
            with contextlib.suppress(Exception):  # e.g. a full disk: opened without saving below
                sess = ort.InferenceSession(str(path), _options(ort, save=tmp), providers=chosen)
                os.replace(tmp, ready)
                return sess
            tmp.unlink(missing_ok=True)
    try:
        return ort.InferenceSession(str(path), _options(ort), providers=chosen)
    except Exception as error:  # onnxruntime raises several unrelated types
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(
            f"cannot load model {path}: {first} "
            "(reinstall it with `reelface models install --force`)"
        ) from error


def _options(ort, rewrite: bool = True, save: Path | None = None):  # -> ort.SessionOptions
    options = ort.SessionOptions()
    options.log_severity_level = 3  # ort warns about unused initialisers on every load
    # Idle ort threads spin by default, stealing the cores that decoding and PNG writing need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not rewrite:  # a copy rewritten already (models/optimised.py)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if save is not None:
        options.optimized_model_filepath = str(save)
    return options


def on_gpu(sess) -> bool:
    return "CUDAExecutionProvider" in sess.get_providers()


def save_model(model, target: Path) -> None:
    """Write an ONNX model atomically: a temp name beside the target, then rename."""
    import onnx

    from reelface.io import atomic_write

    atomic_write(target, lambda tmp: onnx.save(model, str(tmp)))
