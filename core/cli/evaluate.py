"""`reelface eval`: the lab's ArcFace identity score of a generator checkpoint on a test set."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from reelface.cli.group import SIMSWAP_IO, Steps, fail
from reelface.evaluation.evaluate import EvalError
from reelface.evaluation.run import EvalOptions, run_eval
from reelface.models.base import ModelError
from reelface.pipeline.decode import SourceError

console = Console(stderr=True)


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
    from reelface.evaluation import report as eval_report

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
        with Steps("evaluating") as steps:
            report, paths = run_eval(options, progress=steps)
    except (ModelError, EvalError, SourceError) as error:
        fail(error)
    for line in report.problems:
        console.print(f"[yellow]note:[/] {line}", highlight=False, soft_wrap=True)
    if as_json:
        click.echo(json.dumps(json.loads(paths["json"].read_text()), indent=2))
    else:
        Console().print(eval_report.table(report))
    console.print(f"report: {paths['json']}  {paths['csv']}  {paths['grid']}", highlight=False)
