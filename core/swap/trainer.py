"""The SimSwap trainer: G, D, both Adam optimisers and one training step; no files.

One step = a generator update on one batch, then a discriminator update on the next (spec
§4.1); even steps pair each target with its own identity (plus reconstruction), odd steps with
another's. `state()` holds G, D, both optimisers, the step and the RNG states, so a run resumed
from it is bit-identical on the CPU (and on a GPU with `deterministic`). Under torchrun G and D
are wrapped in DDP, one process per GPU (`Dist`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models.base import ModelError
from . import checkpoint, convention, discriminator, identity, losses
from .generator import Generator
from .run_files import FORMAT, VERSION
from .train_options import TrainError, TrainOptions, configs


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
