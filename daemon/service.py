"""The daemon: hold the workspace, recover after a crash, watch the inbox, run jobs till stopped."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sqlite3
import threading
import time
import traceback
from dataclasses import dataclass, field

from reelface import backups, catalogue, errors, jobs
from reelface.jobs import Job
from reelface.workspace import Workspace

from . import gpus, logs, scheduler, settings, work
from .inbox import VIDEO_SUFFIXES, Claimed, Inbox
from .pidfile import PidLock, pid_path
from .settings import DaemonConfig


@dataclass
class Running:
    job: Job
    thread: threading.Thread
    stop: threading.Event
    resource: str
    gpu: int | None


@dataclass
class Daemon:
    """One workspace's service; `run` blocks until SIGTERM/SIGINT or `request_stop`."""

    ws: Workspace
    cfg: DaemonConfig
    ray_address: str | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger(logs.LOGGER))
    stopping: threading.Event = field(default_factory=threading.Event)
    running: dict[int, Running] = field(default_factory=dict)
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    next_backup: float = 0.0  # monotonic time of the next look at whether a backup is due

    # -- life cycle ------------------------------------------------------------------------------

    def run(self) -> None:
        lock = PidLock(pid_path(self.ws))
        lock.acquire()
        # A lost catalogue stops the daemon too, rather than being replaced by an empty one.
        backups.check(self.ws.root, self.ws.catalogue_path)
        conn = catalogue.open_catalogue(self.ws.catalogue_path)
        ray = None
        try:
            self.config = settings.core_config(self.ws)
            self.models = work.Models(self.config)
            gpu_slots = gpus.slots(self.cfg.gpus)
            self.slots = scheduler.Slots(gpu_slots, settings.cpu_slots(self.cfg))
            if self.ray_address:
                from .ray_backend import RayBackend

                ray = RayBackend(self.ray_address, self.cfg.ray_workers, self.cfg.segment_samples)
                self.log.info(ray.connect(self.ws, self.config))
                self.slots.remote = self.cfg.ray_jobs
            self.ray = ray
            self._signals()  # after Ray, which installs its own SIGTERM handler
            self.log.info(
                "daemon %s for %s: %d GPU slot(s), %d CPU slot(s)%s",
                self.worker, self.ws.root, gpu_slots, self.slots.cpu,
                f", {self.slots.remote} Ray slot(s)" if ray else "",
            )  # fmt: skip
            self._recover(conn)
            inbox = self._inbox(conn)
            inbox.start()
            try:
                while not self.stopping.is_set():
                    self._tick(conn, inbox)
                    self.stopping.wait(self.cfg.poll_seconds)
            finally:
                inbox.stop()
                self._shutdown(conn)
        finally:
            if ray is not None:
                ray.close()
            conn.close()
            lock.release()
            self.log.info("daemon stopped")

    def request_stop(self, reason: str = "stop requested") -> None:
        if not self.stopping.is_set():
            self.log.info("%s: stopping after the current batch of each job", reason)
        self.stopping.set()

    def _signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, _frame) -> None:
            if self.stopping.is_set() and signum == signal.SIGINT:
                self.log.warning("second interrupt: quitting now; running jobs resume next start")
                os._exit(130)
            self.request_stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _recover(self, conn: sqlite3.Connection) -> None:
        """Jobs left running by a dead daemon, and films claimed but never queued."""
        requeued, failed = jobs.recover(conn, self.cfg.max_attempts)
        for job_id in requeued:
            self.log.info("job %d was interrupted: queued again, resumes from its last batch",
                          job_id)  # fmt: skip
        for job_id in failed:
            self.log.error("job %d: the daemon died during each attempt; failed", job_id)
        known = {
            json.loads(p).get("path")
            for (p,) in conn.execute("SELECT params FROM jobs WHERE kind = 'extract'")
        }
        for folder in sorted(self.ws.films.iterdir()) if self.ws.films.is_dir() else []:
            for item in sorted(folder.iterdir()) if folder.is_dir() else []:
                rel = str(item.relative_to(self.ws.root))
                if item.suffix.lower() in VIDEO_SUFFIXES and item.is_file() and rel not in known:
                    from reelface.pipeline import decode

                    digest = decode.content_hash(item)
                    self.log.info("film %s was claimed but not queued: queued now", rel)
                    self._queue(conn, Claimed(item, item.name, digest, folder.name))

    # -- the inbox -------------------------------------------------------------------------------

    def _inbox(self, conn: sqlite3.Connection) -> Inbox:
        def is_known(digest: str) -> str | None:
            row = catalogue.find_film(conn, digest)
            if row is not None:
                return f"films/{row['slug']}, film {row['id']}"
            for job in jobs.listing(conn, ("queued", "running")):
                if job.kind == "extract" and job.params.get("hash") == digest:
                    return f"{job.params.get('path')}, job {job.id}"
            return None

        return Inbox(
            root=settings.inbox_path(self.ws, self.cfg),
            films=self.ws.films,
            stable_seconds=self.cfg.stable_seconds,
            close_settle_seconds=self.cfg.close_settle_seconds,
            scan_seconds=self.cfg.scan_seconds,
            on_claim=lambda claimed: self._queue(conn, claimed),
            is_known=is_known,
            log=self.log,
        )

    def _queue(self, conn: sqlite3.Connection, claimed: Claimed) -> None:
        params = {
            "path": str(claimed.path.relative_to(self.ws.root)),
            "slug": claimed.slug,
            "hash": claimed.content_hash,
            "source": claimed.source,
            # Where it was dropped: its folder's films.toml and its sidecar apply (work.py).
            "dropped": str(settings.inbox_path(self.ws, self.cfg) / claimed.source),
            "inbox": str(settings.inbox_path(self.ws, self.cfg)),
        }
        extract_id, cluster_id = jobs.enqueue_film(
            conn, params, cluster=self.cfg.cluster_after_extract
        )
        self.log.info("job %d: extract %s queued%s", extract_id, claimed.slug,
                      f" (job {cluster_id}: cluster after it)" if cluster_id else "")  # fmt: skip

    # -- jobs ------------------------------------------------------------------------------------

    def _tick(self, conn: sqlite3.Connection, inbox: Inbox) -> None:
        if time.monotonic() >= self.next_backup:  # at start, then at most hourly
            self.next_backup = time.monotonic() + 60.0
            made = backups.backup_if_due(self.ws.root, self.ws.catalogue_path)
            if made is not None:
                self.log.info("catalogue backed up to %s", made)
        try:
            inbox.tick()
        except Exception as error:  # never let one odd file stop the service
            detail = errors.one_line(error) if errors.is_own(error) else traceback.format_exc()
            self.log.error("inbox: %s", detail.strip())
        self._reap()
        for job_id, item in list(self.running.items()):
            if jobs.state_of(conn, job_id) == "cancelled" and not item.stop.is_set():
                self.log.info("job %d cancelled: stopping after its current batch", job_id)
                item.stop.set()
        if self.stopping.is_set():
            return
        for job, resource, gpu in scheduler.plan(jobs.runnable(conn), self.slots):
            self._start(conn, job, resource, gpu)

    def _start(self, conn: sqlite3.Connection, job: Job, resource: str, gpu: int | None) -> None:
        log_path = str(logs.job_log_path(self.ws, job.id).relative_to(self.ws.root))
        claimed = jobs.claim(conn, job.id, self.worker, log_path)
        if claimed is None:  # cancelled between the query and the claim
            self.slots.give(resource, gpu)
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=self._execute, args=(claimed, stop, resource, gpu),
            name=f"job-{job.id}", daemon=True,
        )  # fmt: skip
        self.running[job.id] = Running(claimed, thread, stop, resource, gpu)
        thread.start()

    def _reap(self) -> None:
        for job_id, item in list(self.running.items()):
            if not item.thread.is_alive():
                item.thread.join()
                self.slots.give(item.resource, item.gpu)
                del self.running[job_id]

    def _execute(self, job: Job, stop: threading.Event, resource: str, gpu: int | None) -> None:
        """One job on its own thread and catalogue connection; records how it ended."""
        conn = catalogue.open_catalogue(self.ws.catalogue_path)
        with logs.job_logger(self.ws, job.id) as log:
            where = f"GPU {gpu}" if resource == "gpu" else resource
            log.info("job %d %s %s: attempt %d on %s (%s)", job.id, job.kind, job.label(),
                     job.attempts, self.worker, where)  # fmt: skip
            started = time.monotonic()

            def report(fraction: float, film_id: int | None) -> None:
                fields = {"film_id": film_id} if film_id is not None else {}
                try:
                    jobs.progress(conn, job.id, fraction, **fields)
                except sqlite3.Error:  # progress is best effort; a failed COMMIT stays open
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")

            def note(line: str) -> None:
                log.info("job %d: %s", job.id, line)

            state, error = "done", None
            try:
                outcome = self._work(job, stop, report, resource, gpu, note)
                if outcome == "stopped":
                    state = "stopped"
            except Exception as failure:
                # reelface's own errors end a job with their one line; anything else is a bug
                # and also logs its traceback.
                if errors.is_own(failure):
                    state, error = "failed", errors.one_line(failure)
                else:
                    state, error = "failed", f"{type(failure).__name__}: {errors.one_line(failure)}"
                    log.error("job %d: %s", job.id, traceback.format_exc().strip())
            seconds = time.monotonic() - started
            if error:  # paths in the workspace read shorter relative to it
                error = error.replace(f"{self.ws.root}{os.sep}", "")
            self._record(conn, job, state, error, seconds, log)
        conn.close()

    def _work(
        self, job: Job, stop: threading.Event, report, resource: str, gpu: int | None, note
    ) -> str:
        either = _either(stop, self.stopping)
        if job.kind == "extract":
            if resource == "remote":
                ray = self.ray
                return ray.extract(self.ws, self.config, self.models, job, either, report, note)
            return work.extract(self.ws, self.config, self.models, job, either, report, gpu, note)
        return work.other(self.ws, job, stop, report, gpu, note)

    def _record(self, conn, job: Job, state: str, error, seconds: float, log) -> None:
        """Write how the job ended; retried until it lands, since the disk may be full now."""
        tries = 0
        while True:
            try:
                if state == "stopped":
                    if jobs.state_of(conn, job.id) == "cancelled":
                        log.info("job %d cancelled after %.1f s", job.id, seconds)
                    else:
                        jobs.release(conn, job.id, "stopped with the daemon; resumes next start")
                        log.info("job %d stopped after %.1f s: queued to resume", job.id, seconds)
                elif jobs.finish(conn, job.id, state, error):
                    if state == "done":
                        log.info("job %d done in %.1f s", job.id, seconds)
                    else:
                        log.error("job %d failed after %.1f s: %s", job.id, seconds, error)
                return
            except sqlite3.Error as failure:
                # A COMMIT that failed (disk full) leaves the transaction open: end it first.
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if tries == 0:
                    log.warning("job %d: cannot record its end yet (%s); retrying", job.id,
                                failure)  # fmt: skip
                tries += 1
                if self.stopping.is_set() and tries > 10:
                    log.error("job %d: end not recorded; it resumes at the next start", job.id)
                    return
                time.sleep(1.0)

    def _shutdown(self, conn: sqlite3.Connection) -> None:
        for item in self.running.values():
            item.stop.set()
        for job_id, item in list(self.running.items()):
            self.log.info("waiting for job %d to reach the end of its batch", job_id)
            item.thread.join()
        self._reap()


class _Either:
    """Set when either event is: a job stops for its own cancel or for the daemon's stop."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()

    def set(self) -> None:
        self.a.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.a.wait(timeout) or self.b.is_set()


def _either(a: threading.Event, b: threading.Event) -> threading.Event:
    return _Either(a, b)  # type: ignore[return-value]
