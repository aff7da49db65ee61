"""Training speed: steps/s and images/s of the SimSwap trainer (G step + D step per step).

Batches are random uint8 crops built in memory, so the figure is the networks' speed alone (the
loader runs in worker processes alongside). The identity network is a randomly initialised
IResNet of the lab's shape (r50 at full size, a tiny one with --tiny): the real ArcFace cannot
be downloaded here, and its cost depends only on its shape. On a GPU, bf16 autocast is on
unless --no-amp; peak GPU memory is printed.

    python bench/train.py --tiny --batch 4 --steps 20          # CPU test configuration
    python bench/train.py --size 224 --batch 16 --steps 20     # the real configuration (GPU)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from reelface.swap.arcface import IResNet, IResNetConfig
from reelface.swap.train_options import TrainOptions
from reelface.swap.trainer import Trainer

TINY_ARCFACE = IResNetConfig(layers=(1, 2, 1, 1), widths=(8, 16, 16, 32), embedding=64)


def _batch(rng: np.random.Generator, batch: int, size: int, same: bool) -> dict:
    crops = rng.integers(0, 256, (2, batch, size, size, 3), dtype=np.uint8)
    perm = np.arange(batch) if same else rng.permutation(batch)
    return {
        "target": torch.from_numpy(crops[0]),
        "source": torch.from_numpy(crops[1]),
        "perm": torch.from_numpy(perm),
        "same": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="crop size [224; 64 with --tiny]")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--device", default="")
    parser.add_argument("--no-amp", action="store_true")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    size = args.size or (64 if args.tiny else 224)
    with tempfile.TemporaryDirectory() as folder:
        arcface = Path(folder) / "arcface.pt"
        torch.manual_seed(0)
        torch.save(IResNet(TINY_ARCFACE if args.tiny else IResNetConfig()).state_dict(), arcface)
        options = TrainOptions(
            data=[], out=folder, arcface=str(arcface), batch=args.batch, size=size,
            tiny=args.tiny, device=args.device, amp=not args.no_amp, compile=args.compile,
        )  # fmt: skip
        trainer = Trainer(options)
    rng = np.random.default_rng(0)
    batches = [_batch(rng, args.batch, size, same=k % 2 == 0) for k in range(4)]
    cuda = trainer.device.type == "cuda"

    def run(steps: int) -> float:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for k in range(steps):
            trainer.train_step(batches[(2 * k) % 4], batches[(2 * k + 1) % 4])
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    run(args.warmup)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds = run(args.steps)
    rate = args.steps / seconds
    params = sum(p.numel() for p in trainer.G.parameters()) / 1e6
    device = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {device}; size {size}, batch {args.batch}, G {params:.2f} M parameters")
    print(f"steps/s: {rate:.3f}   images/s: {rate * args.batch:.1f}   ({args.steps} steps)")
    if cuda:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
