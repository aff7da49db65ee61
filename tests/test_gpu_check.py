"""The GPU check (`bench/gpu.py`) runs where there is no GPU, so it is known to work before a
GPU session spends its minutes on it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu.py"


def test_the_gpu_check_measures_every_stage_here(models_dir: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: run bench/gpu.py itself and record its figures")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    assert "no GPU here" in text
    for film in ("1080p-h264", "4k-hevc10"):
        assert re.search(rf"decode {film}: CPU [1-9]\d* frames/s", text), text
        faces = re.search(rf"extract {film} \(CPU decode\): .* \((\d+) faces", text)
        assert faces and int(faces.group(1)) > 0, text  # the synthesised film's people found
    assert re.search(r"SCRFD 640 px on CPU, batch +8: +[\d.]+ images/s", text), text
    assert "a 2-hour 4K film would take" in text
    assert re.search(r"training: .*steps/s [\d.]+", text), text
