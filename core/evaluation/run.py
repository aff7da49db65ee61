"""One evaluation run: load the generator(s) and the judge, score the test set, write the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelface import config as config_mod
from reelface.evaluation.evaluate import EvalError, GeneratorSwapper, NoSwap, Report, evaluate


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
    from reelface.evaluation import report as eval_report
    from reelface.models import registry
    from reelface.swap import checkpoint, identity

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
