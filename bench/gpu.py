"""The GPU check: decode, detection, extraction and training speed on this machine, in minutes.

Synthesises a 4K 10-bit HEVC film and a 1080p H.264 film from the package photos (cached in
bench/out), then prints, each measured here and now:
  - decode frames/s of every frame, CPU against NVDEC (FFmpeg's cuda hwaccel) where present;
  - SCRFD batch throughput (images/s) on each onnxruntime provider, at 640 px, batches 1–32;
  - end-to-end extraction (interval 10, 1024 crops): film frames/s and faces/s;
  - a SimSwap training step at 224, batch 16, bf16 autocast: steps/s, images/s, peak memory,
    and model FLOP utilisation (FLOPs counted by torch's FlopCounterMode over one step,
    against the GPU's dense bf16 peak from PEAK_TFLOPS).
Without a GPU it says so and measures the CPU (training in the tiny configuration), so the
script is known to work before it meets a GPU.

    python bench/gpu.py            # about 5 minutes on a GPU machine
    python bench/gpu.py --quick    # fewer frames and steps (CI-sized; 2 CPU cores: ~40 s)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import torch

from reelface import synth, workspace
from reelface.config import Config, models_dir
from reelface.models import install, registry, runtime
from reelface.models.scrfd import ScrfdDetector
from reelface.pipeline.extract import Extractor
from reelface.synth import demo

OUT = Path(__file__).parent / "out"
# Dense bf16 tensor peak, TFLOP/s, by a substring of torch.cuda.get_device_name().
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
               "A10": 125.0, "4090": 165.0, "3090": 71.0}  # fmt: skip


def films(quick: bool, folder: Path) -> dict[str, Path]:
    """The two bench films, made once in `folder`: 1080p H.264 8-bit and 4K HEVC 10-bit (a film
    master)."""
    frames = 8 if quick else 30  # per shot; the demo scenario has 7 shots
    out = {}
    for name, size, codec, pix_fmt in (
        ("1080p-h264", (1920, 1080), "h264", "yuv420p"),
        ("4k-hevc10", (3840, 2160), "hevc", "yuv420p10le"),
    ):
        path = folder / f"gpu-{name}-{frames}.mkv"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            eye = size[1] * 0.2  # faces that pass at 1024 px crops (eye distance ≥ ~180 px)
            shots = demo.scenario(*size, eye=eye, frames=frames)
            options = {"preset": "ultrafast"} if codec == "hevc" else {"preset": "veryfast"}
            synth.make_film(path, shots, size=size, codec=codec, pix_fmt=pix_fmt,
                            encoder_options=options)  # fmt: skip
        out[name] = path
    return out


def decode_rate(path: Path, hwaccel: str = "") -> float:
    """Frames/s decoding every frame (the decoder alone: no colour conversion)."""
    accel = None
    if hwaccel:
        from av.codec.hwaccel import HWAccel

        accel = HWAccel(device_type=hwaccel, allow_software_fallback=False)
    with av.open(str(path), hwaccel=accel) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        started, count = time.perf_counter(), 0
        for _ in container.decode(stream):
            count += 1
        return count / (time.perf_counter() - started)


def nvdec_available() -> bool:
    if not torch.cuda.is_available():  # FFmpeg lists cuda wherever it was built with it
        return False
    try:
        from av.codec.hwaccel import hwdevices_available

        return "cuda" in hwdevices_available()
    except ImportError:
        return False


def detector_rates(quick: bool) -> list[tuple[str, int, float]]:
    """(provider, batch, images/s) for SCRFD at 640 px on every provider onnxruntime has."""
    path = install.detector_path(models_dir(Config()))
    photo = synth.load_photo(synth.package_photos()["insightface_t1"])
    rows = []
    gpus = [0] if runtime.cuda_available() else []
    for device in [None, *gpus]:
        detector = ScrfdDetector(path, device=device)
        label = "CUDA" if device is not None else "CPU"
        for batch in (1, 8) if quick else (1, 8, 16, 32):
            images = [photo] * batch
            detector.detect(images, 640, 0.5)  # warm-up: session start, kernel choice
            runs = 2 if quick or device is None else 10
            started = time.perf_counter()
            for _ in range(runs):
                detector.detect(images, 640, 0.5)
            rows.append((label, batch, runs * batch / (time.perf_counter() - started)))
    return rows


def extraction(path: Path, hwaccel: str) -> dict[str, float]:
    """One film through the real extractor into a scratch workspace."""
    with tempfile.TemporaryDirectory() as folder:
        ws = workspace.init(Path(folder) / "ws")
        cfg = ws.config()
        cfg = replace(cfg, extract=replace(cfg.extract, size=1024, interval=10, hwaccel=hwaccel))
        detector, embedder = registry.load(cfg)
        started = time.perf_counter()
        with Extractor(ws, cfg, detector, embedder) as extractor:
            result = extractor.run(path)
        seconds = time.perf_counter() - started
    s = result.stats
    faces = s.faces_kept + s.faces_flagged
    return {"frames/s": s.frames_reached / seconds, "faces/s": faces / seconds,
            "faces": faces, "seconds": seconds}  # fmt: skip


def training(quick: bool) -> dict[str, float | str]:
    """SimSwap steps at 224, batch 16, bf16 on a GPU (tiny, batch 4 on the CPU) and their MFU."""
    from torch.utils.flop_counter import FlopCounterMode

    from reelface.swap.arcface import IResNet, IResNetConfig
    from reelface.swap.train_options import TrainOptions
    from reelface.swap.trainer import Trainer

    cuda = torch.cuda.is_available()
    size, batch, tiny = (224, 16, False) if cuda else (64, 4, True)
    steps = (5 if quick else 20) if cuda else 3
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        arcface = Path(folder) / "arcface.pt"
        small = IResNetConfig(layers=(1, 2, 1, 1), widths=(8, 16, 16, 32), embedding=64)
        torch.save(IResNet(small if tiny else IResNetConfig()).state_dict(), arcface)
        trainer = Trainer(TrainOptions(data=[], out=folder, arcface=str(arcface), batch=batch,
                                       size=size, tiny=tiny, amp=True))  # fmt: skip

        def batch_of(same: bool) -> dict:
            crops = rng.integers(0, 256, (2, batch, size, size, 3), dtype=np.uint8)
            perm = np.arange(batch) if same else rng.permutation(batch)
            return {"target": torch.from_numpy(crops[0]), "source": torch.from_numpy(crops[1]),
                    "perm": torch.from_numpy(perm), "same": same}  # fmt: skip

        batches = [batch_of(k % 2 == 0) for k in range(4)]

        def run(n: int) -> float:
            if cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
            for k in range(n):
                trainer.train_step(batches[(2 * k) % 4], batches[(2 * k + 1) % 4])
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter() - started

        run(2)
        with FlopCounterMode(display=False) as counter:
            run(2)  # one same-identity step and one other-identity step
        flops_per_step = counter.get_total_flops() / 2
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        rate = steps / run(steps)
    out: dict[str, float | str] = {
        "config": f"{size} px, batch {batch}{', tiny' if tiny else ''}",
        "steps/s": rate,
        "images/s": rate * batch,
        "TFLOP/step": flops_per_step / 1e12,
    }
    if cuda:
        name = torch.cuda.get_device_name()
        out["peak GiB"] = torch.cuda.max_memory_allocated() / 2**30
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        out["MFU"] = f"{flops_per_step * rate / (peak * 1e12):.1%}" if peak else "peak unknown"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and steps")
    parser.add_argument("--out", type=Path, default=OUT, help="where the films are kept")
    args = parser.parse_args()
    started = time.perf_counter()
    cuda = torch.cuda.is_available()
    gpu = torch.cuda.get_device_name() if cuda else "none"
    print(f"GPU: {gpu}; torch {torch.__version__}; onnxruntime providers: "
          f"{runtime.onnxruntime().get_available_providers()}; NVDEC: {nvdec_available()}; "
          f"CPU cores: {torch.get_num_threads()}")  # fmt: skip
    if not cuda:
        print("no GPU here: every figure below is the CPU's")
    made = films(args.quick, args.out)
    for name, path in made.items():
        cpu = decode_rate(path)
        line = f"decode {name}: CPU {cpu:.0f} frames/s"
        if nvdec_available():
            try:
                gpu_rate = decode_rate(path, "cuda")
                line += f", NVDEC {gpu_rate:.0f} frames/s ({gpu_rate / cpu:.1f}×)"
            except Exception as error:  # a driver without this codec: say so, go on
                line += f", NVDEC failed ({type(error).__name__}: {error})"
        print(line)
    for label, batch, rate in detector_rates(args.quick):
        print(f"SCRFD 640 px on {label}, batch {batch:2d}: {rate:7.1f} images/s")
    for name, path in made.items():
        for hwaccel in ("", "cuda") if nvdec_available() else ("",):
            r = extraction(path, hwaccel)
            how = "NVDEC" if hwaccel else "CPU decode"
            print(
                f"extract {name} ({how}): {r['frames/s']:.0f} film frames/s, "
                f"{r['faces/s']:.1f} faces/s ({r['faces']:.0f} faces, {r['seconds']:.1f} s)"
            )
            if name == "4k-hevc10":
                hours = 2 * 3600 * 24 / r["frames/s"] / 3600  # a 2-hour film at 24 fps
                print(f"  → a 2-hour 4K film would take {hours * 60:.0f} min (target ≤ 10)")
    t = training(args.quick)
    print("training: " + ", ".join(
        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in t.items()))  # fmt: skip
    print(f"bench/gpu.py took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
