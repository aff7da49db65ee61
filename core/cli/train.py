"""`reelface train` (SimSwap training on identity folders) and `reelface swap` (one photo pair)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from reelface.cli.group import SIMSWAP_IO, fail
from reelface.errors import ReelfaceError
from reelface.evaluation.swap_one import SwapError, SwapOptions, run_swap
from reelface.models.base import ModelError
from reelface.pipeline.decode import SourceError

console = Console(stderr=True)

# CLI option name → TrainOptions field, for the options that map one to one.
_PLAIN = ("steps", "batch", "size", "tiny", "deep", "alignment", "discriminator", "backbone",
          "lr", "augment", "seed", "save_every", "sample_every", "log_every", "keep", "workers",
          "device", "compile", "deterministic", "trust_pickle", "gpus", "init",
          "init_io")  # fmt: skip
_LAMBDAS = {"lambda_id": "identity", "lambda_rec": "reconstruction", "lambda_feat": "feature"}


def _fail(error: BaseException | str) -> NoReturn:
    fail(error if isinstance(error, BaseException) else ReelfaceError(error))


@click.command("train")
@click.option(
    "--data",
    "roots",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Training root: one folder per identity (jpg/png). Repeat for more roots.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Run folder: checkpoints, samples/, tb/ (TensorBoard), scalars.jsonl.",
)
@click.option(
    "--arcface",
    type=click.Path(path_type=Path),
    default=None,
    help="Identity network for the loss: SimSwap's arcface_checkpoint.tar or a state dict.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its latest.pt.")
@click.option(
    "--init",
    type=click.Path(dir_okay=False),
    default="",
    help="Start the generator from this file: ours or SimSwap's latest_net_G.pth.",
)
@click.option(
    "--init-io",
    type=click.Choice(["", "unit", "imagenet"]),
    default="",
    help="A SimSwap --init file's input: unit (the released 'people' model) or imagenet "
    "(SimSwap's current trainer). Default: probed from the weights.",
)
@click.option(
    "--gpus",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="GPUs; > 1 launches one process per GPU with torchrun (DDP).",
)
@click.option("--steps", type=click.IntRange(1), default=1_000_000, show_default=True)
@click.option(
    "--batch",
    type=click.IntRange(2),
    default=16,
    show_default=True,
    help="Identities per batch, per GPU.",
)
@click.option("--size", type=int, default=None, help="Crop size [224; 64 with --tiny].")
@click.option("--tiny", is_flag=True, help="A tiny generator and D (CPU tests and demos).")
@click.option("--deep", is_flag=True, help="One more down/up level (SimSwap's Gdeep, for 512).")
@click.option(
    "--alignment",
    type=click.Choice(["arcface", "ffhq"]),
    default="arcface",
    show_default=True,
    help="Template the training crops are aligned on.",
)
@click.option(
    "--discriminator", type=click.Choice(["patch", "projected"]), default="patch", show_default=True
)
@click.option("--backbone", default="", help="Projected D only: TorchScript feature network.")
@click.option("--lr", type=float, default=4e-4, show_default=True)
@click.option("--lambda-id", type=float, default=30.0, show_default=True)
@click.option("--lambda-rec", type=float, default=10.0, show_default=True)
@click.option("--lambda-feat", type=float, default=10.0, show_default=True)
@click.option(
    "--augment/--no-augment",
    default=False,
    show_default=True,
    help="Light augmentation: mirror, ±10 % brightness and contrast.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--save-every", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--sample-every", type=click.IntRange(1), default=1_000, show_default=True)
@click.option("--log-every", type=click.IntRange(1), default=100, show_default=True)
@click.option(
    "--keep",
    type=click.IntRange(0),
    default=3,
    show_default=True,
    help="Step checkpoints kept besides latest.pt.",
)
@click.option("--workers", type=click.IntRange(0), default=4, show_default=True)
@click.option("--device", default="", help="torch device (default: cuda when available).")
@click.option("--compile", is_flag=True, help="torch.compile the generator and D.")
@click.option("--no-amp", is_flag=True, help="No bf16 autocast on GPUs.")
@click.option("--deterministic", is_flag=True, help="Deterministic GPU kernels (exact resume).")
@click.option(
    "--trust-pickle", is_flag=True, help="Fully unpickle the ArcFace file (runs code stored in it)."
)
@click.pass_context
def train_command(ctx: click.Context, roots: tuple[Path, ...], out: Path, resume: bool,
                  **values: Any) -> None:  # fmt: skip
    """Train SimSwap on identity folders; Ctrl-C saves a checkpoint, --resume continues."""
    from reelface.swap import data, train
    from reelface.swap.run_files import LATEST
    from reelface.swap.train_options import TrainError, TrainOptions

    given = tuple(
        name for name in (*_PLAIN, "arcface", "no_amp", *_LAMBDAS)
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    ) + (("data",) if roots else ())  # fmt: skip
    if values["size"] is None:
        values["size"] = 64 if values["tiny"] else 224
    options = TrainOptions(
        data=[str(r) for r in roots],
        out=str(out),
        arcface=str(values["arcface"] or ""),
        weights={_LAMBDAS[k]: values[k] for k in _LAMBDAS} | {"adversarial": 1.0},
        amp=not values["no_amp"],
        **{k: values[k] for k in _PLAIN},
    )
    given = tuple(_field(name) for name in given)
    try:
        if not resume and not roots:
            raise TrainError("no training data; pass --data ROOT (one folder per identity)")
        if options.gpus > 1 and "WORLD_SIZE" not in os.environ:
            _check_gpus(options)
            sys.exit(train.launch(options, resume, given))
        options, state = train.prepare(options, resume, given)
        train.run(options, state)
    except (TrainError, ModelError, data.DataError) as error:
        _fail(error)
    console.print(f"checkpoint: {Path(options.out) / LATEST}", highlight=False)


def _field(name: str) -> str:
    return {"no_amp": "amp", **{k: "weights" for k in _LAMBDAS}}.get(name, name)


def _check_gpus(options: Any) -> None:
    import torch

    from reelface.swap.train_options import TrainError

    if options.device.startswith("cpu"):
        return  # CPU processes on the gloo backend (tests, debugging)
    visible = torch.cuda.device_count()
    if visible < options.gpus:
        raise TrainError(
            f"--gpus {options.gpus}: only {visible} GPU(s) visible; lower --gpus or check "
            "CUDA_VISIBLE_DEVICES"
        )


# ---------------------------------------------------------------------------------------------
# swap


@click.command("swap")
@click.option(
    "--model",
    required=True,
    type=click.Path(path_type=Path),
    help="Checkpoint from `reelface train` (RUN/generator.pt) or SimSwap's latest_net_G.pth.",
)
@click.option(
    "--source",
    required=True,
    type=click.Path(path_type=Path),
    help="Photo whose identity is put on the target.",
)
@click.option(
    "--target",
    required=True,
    type=click.Path(path_type=Path),
    help="Photo whose face is replaced (its largest face).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Result image.")
@click.option(
    "--arcface",
    type=click.Path(path_type=Path),
    default=None,
    help="Identity network (default: the one the checkpoint was trained with).",
)
@click.option(
    "--crop-out",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the swapped aligned crop (what evaluation compares).",
)
@click.option(
    "--trust-pickle", is_flag=True, help="Fully unpickle the ArcFace file (runs code stored in it)."
)
@click.option("--models", default=None, help="Detector pack (default: the config's).")
@click.option("--device", default=None, help="torch device (default: cuda when available).")
@SIMSWAP_IO
def swap_command(model: Path, source: Path, target: Path, out: Path, arcface: Path | None,
                 crop_out: Path | None, trust_pickle: bool, models: str | None,
                 device: str | None, simswap_io: str | None) -> None:  # fmt: skip
    """Put SOURCE's identity on TARGET's largest face and paste it back, feathered."""
    options = SwapOptions(model, source, target, out, arcface, trust_pickle, models, device,
                          crop_out, simswap_io)  # fmt: skip
    try:
        notes = run_swap(options)
    except (SwapError, ModelError, SourceError) as error:
        _fail(error)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    console.print(f"wrote {out}", highlight=False)


@click.command("export-model")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--simswap",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Write the generator as a SimSwap state dict (its latest_net_G.pth layout).",
)
def export_model_command(run: Path, out: Path) -> None:
    """Export RUN's generator (RUN/generator.pt, RUN/latest.pt or a checkpoint file) for SimSwap."""
    import torch

    from reelface.swap import checkpoint, simswap
    from reelface.swap.run_files import GENERATOR, LATEST

    source = next((p for p in (run / GENERATOR, run / LATEST) if p.is_file()), run)
    try:
        ckpt = checkpoint.load(source, "cpu")
        state = simswap.export_state(ckpt.model)
    except ModelError as error:
        _fail(error)
    except simswap.SimSwapFormatError as error:
        _fail(f"{source}: {error}")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    console.print(f"wrote {out}: load it into {simswap.simswap_class(ckpt.config)}",
                  highlight=False, soft_wrap=True)  # fmt: skip
