"""ONNX graphs as onnxruntime rewrites them for this CPU, kept so that a start opens them ready.

onnxruntime rewrites every graph it opens (fusions, constant folding, the NCHWc layout): for
the detector and the embedder that was 40 ms of each `reelface extract` start here. The
rewritten graph is saved once per model, onnxruntime release and CPU (the layout is specific
to the CPU's instruction set, and a models folder may be shared between machines), and opened
with the rewriting off, which runs the very same graph.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
from pathlib import Path

from .digests import cache_path, sha256_of


@functools.cache
def cpu_key() -> str:
    """Twelve hex digits naming this CPU's model and instruction set."""
    text = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().split("\n\n", 1)[0].splitlines()  # the first processor's
        text += "".join(line for line in lines if line.startswith(("model name", "flags")))
    except OSError:  # not Linux: platform.processor() names the CPU (on Linux it runs `uname -p`)
        text += platform.processor()
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ready_path(model: Path, runtime_version: str) -> Path:
    """Where the rewritten copy of `model` for this onnxruntime and CPU is kept."""
    name = f"{sha256_of(model)[:16]}-ort{runtime_version}-{cpu_key()}.onnx"
    return cache_path().with_name("onnx") / name


def writable(path: Path) -> bool:
    """Whether a copy can be saved at `path` (its folder made if need be)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path.parent, os.W_OK)
