"""A SimSwap training run: prepare (new or resumed), the loop (samples, scalars, checkpoints,
Ctrl-C), and multi-GPU launch.

Everything random is seeded by (seed, step), so a resumed run repeats the one it continues
(see trainer.py for what a step does, run_files.py for what a run writes). Multi-GPU: one
process per GPU under torchrun, DDP on G and D; `python -m reelface.swap.train OPTIONS.json`
is what torchrun starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_write, write_image
from ..models.base import ModelError
from . import checkpoint, data
from .run_files import LATEST, RunFiles, Scalars, read_state
from .train_options import RESUMABLE, TrainError, TrainOptions
from .trainer import Dist, Trainer

GRID_MAX = 6  # identities in a sample grid (a (n+1)×(n+1) tile)

Progress = Callable[[int, int, dict[str, float]], None]


def _dist_from_env() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as tdist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not tdist.is_initialized():
        tdist.init_process_group(backend)
    return Dist(tdist.get_rank(), tdist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _stop_everywhere(flag: bool, dist: Dist) -> bool:
    """Whether any rank was asked to stop (all ranks must stop at the same step)."""
    if dist.world == 1:
        return flag
    import torch.distributed as tdist

    value = torch.tensor([int(flag)])
    tdist.all_reduce(value, op=tdist.ReduceOp.MAX)
    return bool(value.item())


def _sample_batch(identities: list[data.Identity], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed grid inputs: the first image of each of the first identities as targets, the last
    as sources, so successive grids show the same faces."""
    chosen = identities[:GRID_MAX]
    targets = np.stack([data.read_crop(i.files[0], size) for i in chosen])
    sources = np.stack([data.read_crop(i.files[-1], size) for i in chosen])
    return targets, sources


def print_progress(step: int, steps: int, values: dict[str, float]) -> None:
    shown = " ".join(f"{k}={v:.4g}" for k, v in values.items())
    print(f"step {step}/{steps} {shown}", flush=True)


def prepare(
    options: TrainOptions, resume: bool, given: tuple[str, ...] = ()
) -> tuple[TrainOptions, dict[str, Any] | None]:
    """Options to run with and the state to resume from; one-line errors for a wrong RUN.

    On resume the run's stored options are used, with the RESUMABLE ones named in `given`
    (those the user set on the command line) taken from `options`.
    """
    files = RunFiles(Path(options.out))
    if files.latest.is_file():
        state = read_state(files.latest)
        if not resume:
            raise TrainError(
                f"{files.out}: already holds a run at step {state['step']}; pass --resume to "
                "continue it or choose another --out"
            )
        stored = TrainOptions.from_dict(state["options"])
        for name in set(given) & set(RESUMABLE):
            setattr(stored, name, getattr(options, name))
        stored.out = options.out
        return stored, state
    if resume:
        raise TrainError(f"{files.out}: no {LATEST} to resume from; drop --resume to start a run")
    if not options.arcface:
        raise TrainError("no identity network; pass --arcface FILE (SimSwap's ArcFace)")
    if options.init:
        # The init file's I/O convention (a SimSwap "people" model takes [0, 1] input) is
        # the run's from now on, stored in options.json for --resume.
        init = checkpoint.load(Path(options.init), "cpu", options.init_io or None)
        options.convention = init.config.convention
    return options, None


def run(
    options: TrainOptions,
    state: dict[str, Any] | None = None,
    progress: Progress | None = None,
    dist: Dist | None = None,
) -> Path:
    """Train to options.steps (from `state` when resuming); returns RUN/latest.pt."""
    dist = dist or Dist()
    identities, notes = data.scan([Path(r) for r in options.data])
    data.check_batch(identities, options.batch, dist.world, options.data)
    files = RunFiles(Path(options.out))
    trainer = Trainer(options, dist)
    if state is not None:
        trainer.load_state(state)
    elif options.init:
        trainer.init_generator(Path(options.init))
    start = trainer.step
    progress = progress or print_progress
    scalars = None
    if dist.main:
        files.out.mkdir(parents=True, exist_ok=True)
        atomic_write(
            files.out / "options.json",
            lambda tmp: tmp.write_text(json.dumps(options.to_dict(), indent=2)),
        )
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        files.truncate_scalars(start)
        scalars = Scalars(files, start)
        if scalars.note:
            print(f"note: {scalars.note}", file=sys.stderr)
        grid_inputs = _sample_batch(identities, options.size)
        if start == 0:
            write_image(files.samples / "step_00000000.png", trainer.grid(*grid_inputs))
    schedule = data.Schedule(len(identities), options.batch, dist.world, options.seed)
    dataset = data.PairBatches(identities, options.size, schedule, dist.rank, options.augment)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        sampler=range(2 * start, 2 * options.steps),
        num_workers=options.workers,
        persistent_workers=False,
        # Its own generator: the loader's seed draw must not move the global RNG (exact resume).
        generator=torch.Generator().manual_seed(options.seed),
    )
    stop = {"asked": False}

    def ask_stop(signum: int, frame: Any) -> None:
        stop["asked"] = True

    previous = _install_signals(ask_stop)
    try:
        batches = iter(loader)
        tick, tick_step = time.perf_counter(), start
        while trainer.step < options.steps:
            g_batch, d_batch = next(batches), next(batches)
            for batch in (g_batch, d_batch):
                if "error" in batch:
                    raise data.DataError(batch["error"])
            values = trainer.train_step(g_batch, d_batch)
            step = trainer.step
            stopping = _stop_everywhere(stop["asked"], dist)
            if not dist.main:
                if stopping:
                    break
                continue
            if step % options.log_every == 0 or step == options.steps:
                now = time.perf_counter()
                rate = (step - tick_step) / max(now - tick, 1e-9)
                values["speed/steps_per_s"] = rate
                values["speed/images_per_s"] = rate * options.batch * dist.world
                tick, tick_step = now, step
                scalars.add(step, values)
                progress(step, options.steps, values)
                info = {"step": step, "steps": options.steps, "time": time.time(), **values}
                atomic_write(files.progress, lambda tmp: tmp.write_text(json.dumps(info)))  # noqa: B023
            if step % options.sample_every == 0 or step == options.steps:
                write_image(files.samples / f"step_{step:08d}.png", trainer.grid(*grid_inputs))
            if step % options.save_every == 0 or step == options.steps or stopping:
                files.save(trainer, options.keep)
            if stopping:
                print(f"stopped at step {step}; `--resume` continues", file=sys.stderr)
                break
    finally:
        _restore_signals(previous)
        if scalars is not None:
            scalars.close()
    return files.latest


def _install_signals(handler: Callable) -> dict[int, Any]:
    """SIGINT/SIGTERM finish the step and save a checkpoint (main thread only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def launch(options: TrainOptions, resume: bool, given: tuple[str, ...] = ()) -> int:
    """Start `options.gpus` processes with torchrun (DDP); returns their exit status."""
    import subprocess

    options, _ = prepare(options, resume, given)
    files = RunFiles(Path(options.out))
    files.out.mkdir(parents=True, exist_ok=True)
    spec = files.out / "launch.json"
    atomic_write(spec, lambda tmp: tmp.write_text(json.dumps({"options": options.to_dict(),
                                                          "resume": resume})))  # fmt: skip
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={options.gpus}", "-m", "reelface.swap.train", str(spec),
    ]  # fmt: skip
    return subprocess.call(command)


def main(argv: list[str]) -> int:
    """Entry point of each torchrun process: `python -m reelface.swap.train RUN/launch.json`."""
    spec = json.loads(Path(argv[0]).read_text())
    dist = _dist_from_env()
    try:
        options = TrainOptions.from_dict(spec["options"])
        options, state = prepare(options, spec["resume"], RESUMABLE)
        run(options, state, dist=dist)
    except (TrainError, ModelError, data.DataError) as error:
        if dist.main:
            print(f"reelface: error: {error}", file=sys.stderr)
        return 2
    finally:
        if dist.world > 1:
            import torch.distributed as tdist

            # Every rank reaches the end before any tears gloo down: a rank that leaves while
            # another still sends aborts it ("terminate called without an active exception").
            with contextlib.suppress(RuntimeError):
                tdist.barrier()
            tdist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
