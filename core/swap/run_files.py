"""A training run's folder: the checkpoint format (read_state), RunFiles (where each file
lives, saving a checkpoint, pruning old ones) and Scalars (TensorBoard plus scalars.jsonl)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..io import atomic_write
from .train_options import TrainError

if TYPE_CHECKING:
    from .trainer import Trainer

FORMAT = "reelface.train"
VERSION = 1
LATEST = "latest.pt"
GENERATOR = "generator.pt"


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
