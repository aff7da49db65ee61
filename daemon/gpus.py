"""How many GPUs the jobs may use: onnxruntime's CUDA provider, counted with torch or nvidia-smi."""

from __future__ import annotations

import os
import shutil
import subprocess

from reelface.models import runtime


def _visible_limit() -> int | None:
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    ids = [v for v in value.split(",") if v.strip() and v.strip() != "-1"]
    return len(ids)


def _count_torch() -> int | None:
    try:
        import torch
    except Exception:  # torch is optional and may fail to import on odd CUDA setups
        return None
    try:
        return int(torch.cuda.device_count())
    except Exception:
        return None


def _count_smi() -> int | None:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(1 for line in done.stdout.splitlines() if line.startswith("GPU "))


def detect() -> int:
    """GPUs that extraction can run on: 0 when onnxruntime has no CUDA provider."""
    try:
        has_cuda = runtime.cuda_available()
    except Exception:  # onnxruntime missing or broken: no GPU for extraction
        has_cuda = False
    if not has_cuda:
        return 0
    count = _count_torch() or _count_smi() or 1
    limit = _visible_limit()
    return min(count, limit) if limit is not None else count


def slots(configured: int) -> int:
    """GPU slots: the configured number, or the detected one when it is negative."""
    return detect() if configured < 0 else configured
