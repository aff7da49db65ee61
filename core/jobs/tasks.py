"""Each job kind as one function of a workspace and the job's JSON parameters: the one table.

The daemon runs queued jobs through `run`, so a job means exactly what the CLI command means.
Extraction is the daemon's own (it shares loaded models between jobs), so it is not listed here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reelface import catalogue
from reelface.errors import ReelfaceError
from reelface.identity import identify
from reelface.workspace import Workspace


class NotAvailable(ReelfaceError, RuntimeError):
    """A job kind or parameter this reelface cannot run; the message names the fix."""


def cluster(ws: Workspace, film: str, k: int | None = None) -> dict[str, Any]:
    """Cluster one film's faces (by slug, id or path), as `reelface cluster FILM`."""
    conn = catalogue.open_catalogue(ws.catalogue_path)
    try:
        row = catalogue.film_or_fail(conn, str(film), ws.root)
        film_id = int(row["id"])
        if row["superseded_by"]:  # a partial copy: its people are clustered in the full one
            return _no_one(film_id, f"{row['slug']} is superseded by film {row['superseded_by']}: "
                           "not clustered (its faces are that film's)")  # fmt: skip
        try:
            cfg = ws.config()  # the rules too: clustering refreshes the 'not recognised' flag
            return asdict(identify.cluster_film(conn, film_id, cfg.cluster, k, rules=cfg.rules))
        except identify.NoFaces:
            # A film whose faces were all too small is a finished film with no one in it, not a
            # failure: the queued cluster-after-extract job ends done, with 0 identities.
            return _no_one(film_id, f"{row['slug']}: no faces kept, so 0 identities "
                           "(`reelface films` shows how many were too small)")  # fmt: skip
    finally:
        conn.close()


def _no_one(film_id: int, note: str) -> dict[str, Any]:
    """A clustering job's result for a film it leaves alone: done, 0 identities, and why."""
    return {"film_id": film_id, "run_id": None, "method": "none", "faces": 0, "identities": [],
            "unsorted": 0, "stats": [], "links": [], "note": note}  # fmt: skip


def export(
    ws: Workspace,
    out: str,
    reviewed_only: bool = False,
    zip: str | None = None,
    sizes: list[str] | None = None,
    format: str = "jpg",
    identities: list[int] | None = None,
) -> dict[str, Any]:
    """Write an identity-foldered data set, as `reelface export OUT`."""
    from reelface.dataset import export as export_mod

    options = export_mod.ExportOptions(
        reviewed_only=reviewed_only,
        sizes=tuple(sizes) if sizes else export_mod.ExportOptions().sizes,
        image_format=format,
        zip_name=zip,
        identities=tuple(identities or ()),
    )
    conn = catalogue.open_catalogue(ws.catalogue_path)
    try:
        result = export_mod.export(ws.root, conn, Path(out), ws.config(), options)
    finally:
        conn.close()
    return {
        key: str(value) if isinstance(value, Path) else value
        for key, value in asdict(result).items()
    }


def evaluate(
    ws: Workspace,
    model: str,
    testset: str,
    arcface: str,
    out: str,
    baseline: bool = False,
    reference: str | None = None,
    trust_pickle: bool = False,
    device: str | None = None,
) -> dict[str, Any]:
    """Score a generator checkpoint on a test set, as `reelface eval`."""
    from reelface.evaluation.run import EvalOptions, run_eval

    del ws  # the evaluation reads only the files it is given
    report, files = run_eval(
        EvalOptions(
            model=Path(model),
            testset=Path(testset),
            arcface=Path(arcface),
            out=Path(out),
            baseline=baseline,
            reference=Path(reference) if reference else None,
            trust_pickle=trust_pickle,
            device=device,
        )
    )
    return {"files": {k: str(v) for k, v in files.items()}}


def train(
    ws: Workspace,
    data: list[str],
    out: str,
    arcface: str = "",
    resume: bool = False,
    report: Callable[[float], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train SimSwap on identity folders, as `reelface train` (--gpus N starts torchrun)."""
    from reelface.swap import train as train_mod
    from reelface.swap.run_files import LATEST
    from reelface.swap.train_options import TrainError, TrainOptions

    del ws  # training reads only the roots it is given
    given = (*options, "data", "arcface") if resume else ()
    opts = TrainOptions(data=list(data), out=out, arcface=arcface, **options)
    if opts.gpus > 1:
        code = train_mod.launch(opts, resume, given)
        if code:
            raise TrainError(f"training processes exited with status {code}")
        return {"checkpoint": str(Path(out) / LATEST)}
    opts, state = train_mod.prepare(opts, resume, given)

    def progress(step: int, steps: int, values: dict[str, float]) -> None:
        train_mod.print_progress(step, steps, values)
        if report is not None:
            report(step / steps)

    return {"checkpoint": str(train_mod.run(opts, state, progress))}


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "cluster": cluster,
    "export": export,
    "evaluate": evaluate,
    "train": train,
}


# CLI spellings accepted for a task's parameter (`reelface export TARGET --identity N`).
ALIASES = {"target": "out", "identity": "identities", "roots": "data"}


def parameters(kind: str) -> dict[str, inspect.Parameter]:
    """The parameters a job of `kind` takes, by name (not the workspace, not internal ones)."""
    task = TASKS.get(kind)
    if task is None:
        raise NotAvailable(f"{kind} jobs are not available in this reelface (update it)")
    names = list(inspect.signature(task).parameters.items())[1:]
    # `report` is the daemon's progress callback, not the person's to set.
    return {k: v for k, v in names if k != "report" and v.kind is not v.VAR_KEYWORD}


def describe() -> str:
    """One line per job kind with its parameters (required ones marked *), for --help."""
    return "; ".join(
        f"{kind}: "
        + ", ".join(
            f"{name}{'*' if p.default is inspect.Parameter.empty else ''}"
            for name, p in parameters(kind).items()
        )
        for kind in TASKS
    )


def validate(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The job's parameters checked against its task, with CLI spellings mapped and lists wrapped.

    Called when a job is queued, so a mistake is reported then and not when the job runs.
    """
    accepted = parameters(kind)
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = key.replace("-", "_")
        name = ALIASES.get(name, name)
        if name not in accepted and kind != "train":  # train also takes every training option
            known = ", ".join(accepted)
            raise NotAvailable(f"{kind} jobs take no parameter {key!r}; they take: {known}")
        spec = accepted.get(name)
        if spec is not None and "list" in str(spec.annotation) and not isinstance(value, list):
            value = [value]  # `-p data=/x` is one folder, not a list of its characters
        out[name] = value
    missing = [
        n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in out
    ]
    if missing:
        raise NotAvailable(f"{kind} jobs need {', '.join(f'-p {n}=…' for n in missing)}")
    return out


def run(
    kind: str,
    ws: Workspace,
    params: dict[str, Any],
    report: Callable[[float], None] | None = None,
    gpu: int | None = None,
) -> dict[str, Any]:
    """Run a non-extraction job in this process, on GPU `gpu` when the task can use one."""
    task = TASKS.get(kind)
    if task is None:
        raise NotAvailable(f"{kind} jobs are not available in this reelface (update it)")
    accepts = inspect.signature(task).parameters
    if gpu is not None and "device" in accepts and not params.get("device"):
        params = {**params, "device": f"cuda:{gpu}"}
    if report is not None and "report" in accepts:
        params = {**params, "report": report}
    try:
        inspect.signature(task).bind(ws, **params)
    except TypeError as error:
        # A job queued with parameters the task does not take: say which, in one line.
        raise NotAvailable(f"{kind} job parameters do not fit: {error}") from None
    return task(ws, **params)
