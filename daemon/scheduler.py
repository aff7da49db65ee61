"""Which queued jobs start now: one GPU job per GPU, CPU and Ray jobs up to their limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from reelface.jobs import Job


@dataclass
class Slots:
    """Free capacity per resource; GPUs are numbered so each job knows its device."""

    gpus: int
    cpu: int
    remote: int = 0  # extraction jobs sent to Ray
    gpu_busy: set[int] = field(default_factory=set)
    cpu_busy: int = 0
    remote_busy: int = 0

    def resource(self, job: Job) -> str:
        """'remote', 'gpu' or 'cpu': where this job runs."""
        if self.remote and job.kind == "extract":
            return "remote"
        if job.gpu and self.gpus > 0:
            return "gpu"
        return "cpu"

    def take(self, job: Job) -> tuple[str, int | None] | None:
        """Reserve what `job` needs: (resource, GPU index); None when it is all busy."""
        kind = self.resource(job)
        if kind == "gpu":
            free = [i for i in range(self.gpus) if i not in self.gpu_busy]
            if not free:
                return None
            self.gpu_busy.add(free[0])
            return kind, free[0]
        if kind == "remote":
            if self.remote_busy >= self.remote:
                return None
            self.remote_busy += 1
            return kind, None
        if self.cpu_busy >= self.cpu:
            return None
        self.cpu_busy += 1
        return kind, None

    def give(self, resource: str, gpu: int | None) -> None:
        if resource == "gpu" and gpu is not None:
            self.gpu_busy.discard(gpu)
        elif resource == "remote":
            self.remote_busy -= 1
        else:
            self.cpu_busy -= 1


def plan(runnable: list[Job], slots: Slots) -> list[tuple[Job, str, int | None]]:
    """Jobs to start now, best first, each with its reserved resource.

    A job waiting for a busy GPU does not stop a CPU job behind it from starting; jobs that need
    the same resource start in priority order.
    """
    out = []
    for job in runnable:
        taken = slots.take(job)
        if taken is not None:
            out.append((job, *taken))
    return out
