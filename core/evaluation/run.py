"""One evaluation run: load the generator(s) and the judge, score the test set, write the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelface import config as config_mod
from reelface.evaluation.evaluate import EvalError, GeneratorSwapper, NoSwap, Report, evaluate
from reelface.progress import Counter, Progress


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


def run_eval(
    options: EvalOptions, progress: Progress | None = None
) -> tuple[Report, dict[str, Path]]:
    """Load everything, evaluate, write the report files; raises ModelError / EvalError.

    `progress` is called with (step, steps done, steps in all) as each step starts, and at the end.
    """
    from reelface.evaluation import report as eval_report
    from reelface.models import registry
    from reelface.swap import checkpoint, identity

    if not Path(options.testset).is_dir():
        raise EvalError(
            f"{options.testset}: no such test-set folder (give the folder of source_NN/target_NN)"
        )
    # Loading: the judge, the identity net, each checkpoint, the detector; then finding the
    # faces, one step per swapper, and the report files.
    swapping = 1 + bool(options.reference) + options.baseline
    total = 3 + bool(options.id_net) + bool(options.reference) + 1 + swapping + 1
    steps = Counter(total, progress)
    step = steps.step

    step(f"loading {Path(options.arcface).name}")
    judge = identity.load_identity(options.arcface, options.trust_pickle, options.device)
    if options.id_net:
        step(f"loading {Path(options.id_net).name}")
    id_net = (
        identity.load_identity(options.id_net, options.trust_pickle, options.device)
        if options.id_net
        else judge
    )
    step(f"loading {Path(options.model).name}")
    model = checkpoint.load(options.model, options.device, options.simswap_io)
    swappers: list[Any] = [GeneratorSwapper("model", model)]
    if options.reference:
        step(f"loading {Path(options.reference).name}")
        swappers.append(
            GeneratorSwapper(
                "reference", checkpoint.load(options.reference, options.device, options.simswap_io)
            )
        )
    if options.baseline:
        swappers.append(NoSwap(model.config.image_size, model.config.alignment))
    step("loading the detector")
    detector, _ = registry.load(registry.float32(config_mod.Config()), options.models)
    report = evaluate(options.testset, swappers, judge, detector, id_net, on_step=step)
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
    step("writing the report and grid")
    paths = eval_report.write(report, options.out)
    steps.end("evaluated")
    return report, paths


def _describe_checkpoint(ckpt: Any) -> dict[str, Any]:
    return {"path": ckpt.path, "sha256": ckpt.sha256, "config": ckpt.config.to_dict(), **ckpt.info}


def _describe_net(net: Any) -> dict[str, Any]:
    return {"path": net.path, "sha256": net.sha256, "kind": net.kind, "dim": net.dim}
