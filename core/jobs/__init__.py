"""Jobs: the queue in the catalogue (`queue`) and what each kind runs (`tasks`)."""

from reelface.jobs.queue import (
    ENDED,
    GPU_KINDS,
    KINDS,
    STATES,
    URGENT,
    Job,
    JobError,
    cancel,
    claim,
    counts,
    enqueue,
    enqueue_film,
    finish,
    get,
    listing,
    progress,
    recover,
    release,
    retry,
    runnable,
    state_of,
)

__all__ = [
    "ENDED", "GPU_KINDS", "KINDS", "STATES", "URGENT", "Job", "JobError", "cancel", "claim",
    "counts", "enqueue", "enqueue_film", "finish", "get", "listing", "progress", "recover",
    "release", "retry", "runnable", "state_of",
]  # fmt: skip
