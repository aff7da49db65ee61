"""Extraction on a Ray cluster: films cut into segments, run by workers that keep their models.

The daemon stays the one writer of the catalogue: each worker (a Ray actor, one per GPU where the
cluster has GPUs) decodes its segment, writes its crops to the film's folder on shared storage
(temp name, then rename) and returns the faces; the daemon commits them in film order
(pipeline/segments.py merges). A worker that dies has its segment run again on a new one. No
worker ever opens the SQLite catalogue, whose locking does not hold over network filesystems.
`ray` is an optional extra: `pip install 'reelface[ray]'`.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelface.config import Config
from reelface.errors import ReelfaceError
from reelface.io import atomic_write
from reelface.jobs import Job
from reelface.pipeline import decode, segments
from reelface.pipeline.results import ExtractError, Stats
from reelface.workspace import Workspace

from . import work

# One line per Ray worker while the daemon runs, for `daemon status` (WORKSPACE/logs/).
WORKERS_FILE = "ray-workers.json"


class RayUnavailable(ReelfaceError, RuntimeError):
    """Ray is not installed or the cluster cannot be reached; the message names the fix."""


class SegmentWorker:
    """A Ray actor's body: the models loaded once, then any number of segments."""

    def __init__(self, root: str, config: Config) -> None:
        import os
        import socket

        from reelface.models import registry
        from reelface.pipeline.analyse import FaceWorker

        detector, embedder = registry.load(config)
        self.worker = FaceWorker(Path(root), config, detector, embedder)
        self.where = f"{socket.gethostname()} pid {os.getpid()}, {detector.name}"

    def describe(self) -> str:
        return self.where

    def run(self, info: decode.FilmInfo, faces_dir: str, after: int, until: int | None):
        stats = Stats()
        batches = list(self.worker.batches(info, Path(faces_dir), after, until, stats=stats))
        return batches, stats


@dataclass
class RayBackend(segments.Segmented):
    """One connection to a Ray cluster ('local' starts a private one on this machine); as an
    Extractor source, it runs a film's segments on the cluster's workers."""

    address: str
    workers: int = 4
    per: int = segments.SAMPLES_PER_SEGMENT
    actor_class: Any = None
    args: tuple = ()  # what each worker is started with: the workspace root and its config
    idle: queue.Queue = field(default_factory=queue.Queue)
    lines: list[str] = field(default_factory=list)  # one per worker, for the log and status
    status_file: Path | None = None

    def connect(self, ws: Workspace, config: Config) -> str:
        try:
            import ray
        except ImportError:
            raise RayUnavailable(
                "--ray needs Ray: pip install 'reelface[ray]' (or run without --ray)"
            ) from None
        try:
            if self.address == "local":
                ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            else:
                ray.init(address=self.address, log_to_driver=False, ignore_reinit_error=True)
        except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError…
            raise RayUnavailable(
                f"cannot join the Ray cluster at {self.address}: {error} "
                "(start it with `ray start --head`, or give its address as HOST:PORT)"
            ) from error
        # A worker per GPU where the cluster has GPUs (Ray places each on its own device and
        # sets CUDA_VISIBLE_DEVICES); else CPU workers of one core each.
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
        count = min(self.workers, gpus if gpus else cpus)  # more would wait for room forever
        self.actor_class = ray.remote(num_gpus=1 if gpus else 0, num_cpus=1, max_restarts=0)(
            SegmentWorker
        )
        self.args = (str(ws.root), config)
        actors = [self.actor_class.remote(*self.args) for _ in range(count)]
        try:
            self.lines = ray.get([a.describe.remote() for a in actors], timeout=600)
        except Exception as error:  # a worker that cannot load the models says why here
            raise RayUnavailable(f"the Ray workers did not start: {error}") from error
        for actor in actors:
            self.idle.put(actor)
        self.status_file = ws.root / "logs" / WORKERS_FILE
        atomic_write(self.status_file, lambda tmp: tmp.write_text(json.dumps(self.lines)))
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        workers = "; ".join(f"worker {i + 1}: {line}" for i, line in enumerate(self.lines))
        return (
            f"Ray {ray.__version__} at {self.address}: {nodes} node(s), {count} "
            f"{'GPU' if gpus else 'CPU'} worker(s) ({workers})"
        )

    def extract(
        self,
        ws: Workspace,
        config: Config,
        models: work.Models,
        job: Job,
        stop: threading.Event,
        report: work.Report,
        note: work.Note | None = None,
    ) -> str:
        """The film's segments on the cluster, committed here in order; 'done' or 'stopped'."""
        return work.extract(ws, config, models, job, stop, report, None, note, source=self)

    where = "on the Ray cluster"

    @property
    def interval(self) -> int:
        return self.args[1].extract.interval

    def _results(self, info, faces_dir, plan, stop, stats):
        import ray
        from ray.exceptions import RayActorError

        todo = list(plan)
        tries = dict.fromkeys(range(len(plan)), 0)
        running: dict[Any, tuple[Any, segments.Segment]] = {}
        try:
            while todo or running:
                while todo and not self.idle.empty():  # films share the workers
                    actor, segment = self.idle.get(), todo.pop(0)
                    ref = actor.run.remote(info, str(faces_dir), segment.after, segment.until)
                    running[ref] = (actor, segment)
                if stop is not None and stop.is_set():
                    return  # committed batches stay; the rest is done at the next start
                if not running:  # every worker busy with other films: wait for one
                    with contextlib.suppress(queue.Empty):
                        self.idle.put(self.idle.get(timeout=1.0))
                    continue
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in ready:
                    actor, segment = running.pop(ref)
                    try:
                        batches, part = ray.get(ref)
                    except RayActorError:
                        # The worker died (node lost, kill -9, out of memory): a new one takes
                        # its segment; the crops it wrote are rewritten with the same bytes.
                        tries[segment.index] += 1
                        if tries[segment.index] > segments.RETRIES:
                            raise ExtractError(
                                f"{info.path}: the Ray worker of frames {segment.after + 1}– "
                                f"died {tries[segment.index]} times; see `ray status`"
                            ) from None
                        stats.notes.append(f"a Ray worker died; segment {segment.index} again")
                        self.idle.put(self.actor_class.remote(*self.args))
                        todo.insert(0, segment)
                        continue
                    self.idle.put(actor)
                    stats.decode_seconds += part.decode_seconds
                    stats.detect_seconds += part.detect_seconds
                    yield segment.index, batches
        finally:
            for ref, (actor, _) in running.items():
                with contextlib.suppress(Exception):  # a running task of a sync actor goes on
                    ray.cancel(ref)
                self.idle.put(actor)

    def close(self) -> None:
        if self.status_file is not None:
            self.status_file.unlink(missing_ok=True)
        try:
            import ray

            ray.shutdown()
        except Exception:
            pass
