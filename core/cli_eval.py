"""`reelface eval`: the lab's ArcFace identity score of a generator checkpoint on a test set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from . import config as config_mod
from .decode import SourceError
from .evaluate import EvalError, GeneratorSwapper, NoSwap, Report, evaluate
from .models.base import ModelError

# SimSwap's 224 network files share every parameter name, so only their I/O tells them apart:
# the released "people" model (fs_networks) takes [0, 1] and ends in Tanh, its current trainer's
# (fs_networks_fix) takes ImageNet-normalised input. Unset, a probe decides (swap/simswap.py).
SIMSWAP_IO = click.option(
    "--simswap-io",
    type=click.Choice(["unit", "imagenet"]),
    default=None,
    help="A SimSwap generator file's input: unit ([0, 1], the released 'people' model) or "
    "imagenet (SimSwap's current trainer). Default: probed from the weights.",
)

console = Console(stderr=True)


@dataclass(frozen=True)
class EvalOptions:
    """One evaluation run, as the CLI or a daemon job describes it."""

    model: Path
    testset: Path
    arcface: Path
    out: Path
    baseline: bool = False
    reference: Path | None = None
    id_net: Path | None = None  # the identity encoder for the swaps; default: arcface
    trust_pickle: bool = False
    models: str | None = None  # detector pack; default: the config's
    device: str | None = None
    simswap_io: str | None = None  # SimSwap files' I/O convention; None probes for it


def run_eval(options: EvalOptions) -> tuple[Report, dict[str, Path]]:
    """Load everything, evaluate, write the report files; raises ModelError / EvalError."""
    from . import eval_report
    from .models import registry
    from .swap import checkpoint, identity

    if not Path(options.testset).is_dir():
        raise EvalError(
            f"{options.testset}: no such test-set folder (give the folder of source_NN/target_NN)"
        )
    judge = identity.load_identity(options.arcface, options.trust_pickle, options.device)
    id_net = (
        identity.load_identity(options.id_net, options.trust_pickle, options.device)
        if options.id_net
        else judge
    )
    model = checkpoint.load(options.model, options.device, options.simswap_io)
    swappers: list[Any] = [GeneratorSwapper("model", model)]
    if options.reference:
        swappers.append(
            GeneratorSwapper(
                "reference", checkpoint.load(options.reference, options.device, options.simswap_io)
            )
        )
    if options.baseline:
        swappers.append(NoSwap(model.config.image_size, model.config.alignment))
    detector, _ = registry.load(registry.float32(config_mod.Config()), options.models)
    report = evaluate(options.testset, swappers, judge, detector, id_net)
    trained_with = model.identity.get("sha256")
    if trained_with and trained_with != id_net.sha256:
        report.problems.append(
            f"the generator was trained with ArcFace {trained_with[:12]}…, the swaps used "
            f"{id_net.sha256[:12]}… ({Path(id_net.path).name})"
        )
    extra = {
        "model": _describe_checkpoint(model),
        "reference": _describe_checkpoint(swappers[1].checkpoint) if options.reference else None,
        "arcface": _describe_net(judge),
        "id_net": _describe_net(id_net),
        "alignment": {"template": model.config.alignment, "size": model.config.image_size},
    }
    report.info.update(extra)
    return report, eval_report.write(report, options.out)


def _describe_checkpoint(ckpt: Any) -> dict[str, Any]:
    return {"path": ckpt.path, "sha256": ckpt.sha256, "config": ckpt.config.to_dict(), **ckpt.info}


def _describe_net(net: Any) -> dict[str, Any]:
    return {"path": net.path, "sha256": net.sha256, "kind": net.kind, "dim": net.dim}


@click.command("eval")
@click.option(
    "--model",
    "model",
    required=True,
    type=click.Path(path_type=Path),
    help="Generator checkpoint written by `reelface train`.",
)
@click.option(
    "--testset",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of source_NN / target_NN photos (any image extension).",
)
@click.option(
    "--arcface",
    required=True,
    type=click.Path(path_type=Path),
    help="SimSwap's arcface_checkpoint.tar, a state dict of it, or an insightface .onnx.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Report folder (default: ./eval-<checkpoint name>).",
)
@click.option("--baseline", is_flag=True, help="Add 'no swap' rows (the target itself).")
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    default=None,
    help="A second checkpoint evaluated the same way, for comparison.",
)
@click.option(
    "--id-net",
    type=click.Path(path_type=Path),
    default=None,
    help="Identity encoder driving the swaps (default: --arcface).",
)
@click.option(
    "--trust-pickle", is_flag=True, help="Fully unpickle the ArcFace file (runs code stored in it)."
)
@click.option("--models", default=None, help="Detector pack (default: the config's).")
@click.option("--device", default=None, help="torch device (default: cuda when available).")
@SIMSWAP_IO
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
def eval_command(
    model: Path,
    testset: Path,
    arcface: Path,
    out: Path | None,
    baseline: bool,
    reference: Path | None,
    id_net: Path | None,
    trust_pickle: bool,
    models: str | None,
    device: str | None,
    simswap_io: str | None,
    as_json: bool,
) -> None:
    """Score a generator with the lab's ArcFace cosine-distance protocol (lower is better)."""
    from . import eval_report

    options = EvalOptions(
        model,
        testset,
        arcface,
        out or Path(f"eval-{model.stem}"),
        baseline,
        reference,
        id_net,
        trust_pickle,
        models,
        device,
        simswap_io,
    )
    try:
        report, paths = run_eval(options)
    except (ModelError, EvalError, SourceError) as error:
        from .cli import fail  # here: reelface.cli imports this module

        fail(error)
    for line in report.problems:
        console.print(f"[yellow]note:[/] {line}", highlight=False, soft_wrap=True)
    if as_json:
        click.echo(json.dumps(json.loads(paths["json"].read_text()), indent=2))
    else:
        Console().print(eval_report.table(report))
    console.print(f"report: {paths['json']}  {paths['csv']}  {paths['grid']}", highlight=False)
