"""SimSwap training: pair schedule, losses, Adam, checkpoints with exact resume, samples, scalars.

One step = a generator update on one batch, then a discriminator update on the next (spec
§4.1); even steps pair each target with its own identity (plus reconstruction), odd steps with
another's. Everything random is seeded by (seed, step), and a checkpoint holds G, D, both
optimisers, the step and the RNG states, so a resumed run is bit-identical on the CPU (and on
a GPU with `deterministic`). Multi-GPU: one process per GPU under torchrun, DDP on G and D;
`python -m reelface.swap.train OPTIONS.json` is what torchrun starts.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ReelfaceError
from ..io import atomic_write, write_image
from ..models.base import ModelError
from . import checkpoint, convention, data, discriminator, identity, losses
from .generator import Generator, GeneratorConfig

FORMAT = "reelface.train"
VERSION = 1
LATEST = "latest.pt"
GENERATOR = "generator.pt"
GRID_MAX = 6  # identities in a sample grid (a (n+1)×(n+1) tile)

Progress = Callable[[int, int, dict[str, float]], None]


@dataclass
class TrainOptions:
    """One training run; written to RUN/options.json and into every checkpoint."""

    data: list[str]
    out: str
    arcface: str = ""
    steps: int = 1_000_000
    batch: int = 16  # per GPU
    size: int = 224
    tiny: bool = False  # the CPU test configuration (GeneratorConfig.tiny, a small D)
    deep: bool = False
    alignment: str = "arcface"
    discriminator: str = "patch"
    backbone: str = ""
    lr: float = 4e-4
    weights: dict[str, float] = field(default_factory=lambda: losses.LossWeights().to_dict())
    augment: bool = False
    seed: int = 0
    save_every: int = 10_000
    sample_every: int = 1_000
    log_every: int = 100
    keep: int = 3  # step checkpoints kept besides latest.pt
    workers: int = 4
    device: str = ""  # "" = cuda when available
    compile: bool = False
    amp: bool = True  # bf16 autocast on GPUs
    deterministic: bool = False  # deterministic GPU kernels (exact resume on a GPU)
    trust_pickle: bool = False
    gpus: int = 1
    init: str = ""  # generator to start from (ours or SimSwap's latest_net_G.pth)
    init_io: str = ""  # a SimSwap --init file's I/O convention; "" probes for it
    convention: str = "imagenet"  # generator I/O; an --init file's own convention wins

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class TrainError(ReelfaceError, RuntimeError):
    """Training cannot start or go on; the one-line message names the file and the fix."""


@dataclass
class Dist:
    """This process's place in a (possibly one-process) distributed run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _device(options: TrainOptions, dist: Dist) -> torch.device:
    if options.device:
        device = torch.device(options.device)
        if device.type == "cuda" and dist.world > 1:
            device = torch.device("cuda", dist.local_rank)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", dist.local_rank)
    return torch.device("cpu")


def _load_id_net(options: TrainOptions, device: torch.device) -> identity.TorchArcFace:
    if not options.arcface:
        raise TrainError("no identity network; pass --arcface FILE (SimSwap's ArcFace)")
    net = identity.load_identity(Path(options.arcface), options.trust_pickle, str(device))
    if not isinstance(net, identity.TorchArcFace):
        raise ModelError(
            f"{options.arcface}: an ONNX recogniser is not differentiable; training needs "
            "SimSwap's arcface_checkpoint.tar or a state dict of its IResNet"
        )
    return net


def configs(
    options: TrainOptions, id_dim: int
) -> tuple[GeneratorConfig, discriminator.DiscriminatorConfig]:
    """The generator's and discriminator's shapes for these options (TrainError if invalid)."""
    try:
        base = GeneratorConfig.tiny(id_dim, options.size) if options.tiny else GeneratorConfig()
        gconfig = GeneratorConfig.from_dict(
            {**base.to_dict(), "image_size": options.size, "id_dim": id_dim,
             "deep": options.deep, "alignment": options.alignment,
             "convention": options.convention}
        )  # fmt: skip
        d_base = discriminator.DiscriminatorConfig.tiny() if options.tiny else None
        dconfig = discriminator.DiscriminatorConfig.from_dict(
            {**(d_base or discriminator.DiscriminatorConfig()).to_dict(),
             "kind": options.discriminator, "backbone": options.backbone}
        )  # fmt: skip
    except ValueError as error:
        raise TrainError(f"{options.out}: {error}") from None
    return gconfig, dconfig


class Trainer:
    """The networks, optimisers and one training step; no files (run() does those)."""

    def __init__(self, options: TrainOptions, dist: Dist | None = None) -> None:
        self.options = options
        self.dist = dist = dist or Dist()
        self.device = _device(options, dist)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            if options.deterministic:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True)
            else:
                torch.backends.cudnn.benchmark = True
                torch.backends.cuda.matmul.allow_tf32 = True
                torch.backends.cudnn.allow_tf32 = True
        self.id_net = _load_id_net(options, self.device)
        torch.manual_seed(options.seed)  # same initial weights on every rank and every run
        gconfig, dconfig = configs(options, self.id_net.dim)
        self.gconfig, self.dconfig = gconfig, dconfig
        self.weights = losses.LossWeights(**options.weights)
        self.G = Generator(gconfig).to(self.device)
        self.D = discriminator.build(dconfig, gconfig.image_size).to(self.device)
        adam = {"lr": options.lr, "betas": (0.0, 0.99), "eps": 1e-8}
        self.opt_g = torch.optim.Adam(self.G.parameters(), **adam)
        self.d_params = [p for p in self.D.parameters() if p.requires_grad]  # not frozen parts
        self.opt_d = torch.optim.Adam(self.d_params, **adam)
        self.step = 0
        self.g_train: Any = self.G
        self.d_train: Any = self.D
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_train = DDP(self.G, device_ids=ids)
            self.d_train = DDP(self.D, device_ids=ids)
        if options.compile:
            self.g_train = torch.compile(self.g_train)
            self.d_train = torch.compile(self.d_train)
        self.G.train()
        self.D.train()

    def _autocast(self) -> Any:
        on = self.options.amp and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=on)

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
        """(target in G space, identity vectors, real images in G space, same-identity step)."""
        x_t = convention.to_unit(batch["target"].numpy(), self.device)
        x_s = convention.to_unit(batch["source"].numpy(), self.device)
        with torch.no_grad(), self._autocast():
            z = self.id_net.embed_tensor(x_s).float()[batch["perm"].to(self.device)]
        conv = self.gconfig.convention
        return (
            convention.generator_input(x_t, conv),
            z,
            convention.generator_input(x_s, conv),
            bool(batch["same"]),
        )

    def _image01(self, y: torch.Tensor) -> torch.Tensor:
        """G output → [0, 1] image for ArcFace, unclamped so the identity loss has gradients."""
        if self.gconfig.convention == "imagenet":
            return convention.denormalise_imagenet(y)
        return y

    def train_step(self, g_batch: dict, d_batch: dict) -> dict[str, float]:
        """One generator update, then one discriminator update; the losses as floats."""
        w = self.weights
        target, z, _, same = self._inputs(g_batch)
        # The G step reads D through the plain module with its weights frozen: no D gradients
        # are computed, and DDP's D reducer only ever sees the D step.
        self._d_grad(False)
        with self._autocast():
            y = self.g_train(target, z)
            fake = self.D(y)
            with torch.no_grad():
                real_feats = self.D(target)
            l_adv = losses.g_hinge(fake)
            l_id = losses.identity(self.id_net.embed_tensor(self._image01(y)), z)
            l_fm = losses.feature_matching(fake, real_feats)
            l_rec = (
                losses.reconstruction(y, target) if same else y.new_zeros((), dtype=torch.float32)
            )
            l_g = w.adversarial * l_adv + w.identity * l_id + w.feature * l_fm
            if same:
                l_g = l_g + w.reconstruction * l_rec
        self.opt_g.zero_grad(set_to_none=True)
        l_g.backward()
        self.opt_g.step()
        self._d_grad(True)

        target2, z2, real2, _ = self._inputs(d_batch)
        with torch.no_grad(), self._autocast():
            y2 = self.G(target2, z2)
        with self._autocast():
            l_real, l_fake = losses.d_hinge(self.d_train(real2), self.d_train(y2.detach()))
            l_d = l_real + l_fake
        self.opt_d.zero_grad(set_to_none=True)
        l_d.backward()
        self.opt_d.step()
        self.step += 1
        values = {
            "G/total": l_g, "G/adversarial": l_adv, "G/identity": l_id, "G/feature": l_fm,
            "D/real": l_real, "D/fake": l_fake, "D/total": l_d,
        }  # fmt: skip
        if same:
            values["G/reconstruction"] = l_rec
        return {k: float(v.detach()) for k, v in values.items()}

    def _d_grad(self, on: bool) -> None:
        for p in self.d_params:
            p.requires_grad_(on)

    @torch.no_grad()
    def grid(self, targets: np.ndarray, sources: np.ndarray) -> np.ndarray:
        """(n+1)×(n+1) tiles: header row the identity sources, row i target i with each identity."""
        self.G.eval()
        try:
            x_t = convention.to_unit(targets, self.device)
            x_s = convention.to_unit(sources, self.device)
            z = self.id_net.embed_tensor(x_s).float()
            n, size = len(targets), targets.shape[1]
            rows = [np.concatenate([np.zeros_like(targets[0]), *sources], axis=1)]
            for i in range(n):
                out = self.G.swap(x_t[i : i + 1].expand(n, -1, -1, -1), z)
                rows.append(np.concatenate([targets[i], *convention.to_uint8(out)], axis=1))
            assert rows[0].shape[1] == (n + 1) * size
            return np.concatenate(rows, axis=0)
        finally:
            self.G.train()

    def identity_info(self) -> dict[str, Any]:
        net = self.id_net
        return {"name": net.name, "sha256": net.sha256, "dim": net.dim, "path": net.path}

    def state(self) -> dict[str, Any]:
        """Everything a resume needs, on the CPU, in types torch's weights-only loader reads."""
        info = {"step": self.step, "data": list(self.options.data), "time": time.time()}
        return {
            "format": FORMAT,
            "version": VERSION,
            "generator": checkpoint.to_dict(self.G, self.identity_info(), info),
            "discriminator": {
                "config": self.dconfig.to_dict(),
                "state_dict": {k: v.detach().cpu() for k, v in self.D.state_dict().items()},
            },
            "optim_g": self.opt_g.state_dict(),
            "optim_d": self.opt_d.state_dict(),
            "step": self.step,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "options": self.options.to_dict(),
        }

    def init_generator(self, path: Path) -> None:
        """Start G from a generator file whose shape matches this run (TrainError if not)."""
        ckpt = checkpoint.load(path, "cpu", self.gconfig.convention)
        theirs, ours = ckpt.config.to_dict(), self.gconfig.to_dict()
        differ = [k for k in ours if k not in ("alignment", "convention") and theirs[k] != ours[k]]
        if differ:
            shown = ", ".join(f"{k} {theirs[k]} (run: {ours[k]})" for k in differ)
            raise TrainError(f"{path}: --init generator differs from the run: {shown}; "
                             "pass matching --size/--deep, without --tiny")  # fmt: skip
        self.G.load_state_dict(ckpt.model.state_dict())

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a `state()` dict (G, D, optimisers, step, RNG)."""
        self.G.load_state_dict(state["generator"]["state_dict"])
        self.D.load_state_dict(state["discriminator"]["state_dict"])
        self.opt_g.load_state_dict(state["optim_g"])
        self.opt_d.load_state_dict(state["optim_d"])
        self.step = int(state["step"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])


# ---------------------------------------------------------------------------------------------
# Files of a run


def read_state(path: Path) -> dict[str, Any]:
    """A training checkpoint (weights-only load); TrainError names the file and the fix."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        raise TrainError(
            f"{path}: unreadable training checkpoint ({type(error).__name__}); resume from "
            "an older checkpoints/step_*.pt by copying it to latest.pt"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainError(f"{path}: not a reelface training checkpoint; choose another --out")
    return state


class RunFiles:
    """RUN/: options.json, latest.pt, generator.pt, checkpoints/, samples/, tb/, scalars.jsonl."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.latest = self.out / LATEST
        self.generator = self.out / GENERATOR
        self.checkpoints = self.out / "checkpoints"
        self.samples = self.out / "samples"
        self.tb = self.out / "tb"
        self.scalars = self.out / "scalars.jsonl"
        self.progress = self.out / "progress.json"

    def save(self, trainer: Trainer, keep: int) -> Path:
        """Step checkpoint, then latest.pt and generator.pt pointing at it; old steps pruned."""
        state = trainer.state()
        path = self.checkpoints / f"step_{trainer.step:08d}.pt"
        atomic_write(path, lambda tmp: torch.save(state, tmp))

        def link(tmp: Path) -> None:
            try:
                os.link(path, tmp)  # a hard link: latest.pt costs no space
            except OSError:
                torch.save(state, tmp)

        atomic_write(self.latest, link)
        atomic_write(self.generator, lambda tmp: torch.save(state["generator"], tmp))
        for old in sorted(self.checkpoints.glob("step_*.pt"))[:-keep] if keep > 0 else []:
            old.unlink(missing_ok=True)
        return path

    def truncate_scalars(self, step: int) -> None:
        """Drop logged lines past `step` (written by a run killed after its last checkpoint)."""
        if not self.scalars.is_file():
            return
        lines = self.scalars.read_text().splitlines()
        kept = [line for line in lines if line and json.loads(line)["step"] <= step]
        atomic_write(self.scalars, lambda tmp: tmp.write_text("".join(f"{x}\n" for x in kept)))


class Scalars:
    """TensorBoard event files (tensorboardX) plus a JSON-lines copy the TUI and tests read."""

    def __init__(self, files: RunFiles, start: int) -> None:
        self.files = files
        self.writer = None
        self.note = ""
        try:
            from tensorboardX import SummaryWriter

            # purge_step hides events a killed run wrote past the checkpoint it resumes from.
            self.writer = SummaryWriter(str(files.tb), purge_step=start or None)
        except ImportError:
            self.note = "tensorboardX is not installed: scalars only in scalars.jsonl"

    def add(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)
            self.writer.flush()
        with self.files.scalars.open("a") as handle:
            handle.write(json.dumps({"step": step, **values}) + "\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# ---------------------------------------------------------------------------------------------
# The run


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


# What a resumed run may change; the model, data schedule and seed come from the run itself.
RESUMABLE = ("steps", "data", "workers", "device", "compile", "amp", "deterministic", "gpus",
             "save_every", "sample_every", "log_every", "keep", "trust_pickle",
             "arcface")  # fmt: skip


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

            tdist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
