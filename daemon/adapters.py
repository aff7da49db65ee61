"""Non-extraction jobs: each kind runs the core task of the same name (reelface.tasks)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from reelface import tasks
from reelface.errors import ReelfaceError
from reelface.workspace import Workspace


class NotAvailable(ReelfaceError, RuntimeError):
    """A job kind or parameter this reelface cannot run; the message names the fix."""


def run(
    kind: str,
    ws: Workspace,
    params: dict[str, Any],
    report: Callable[[float], None] | None = None,
    gpu: int | None = None,
) -> Any:
    """Run a non-extraction job in this process, on GPU `gpu` when the task can use one."""
    task = getattr(tasks, kind, None)
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
