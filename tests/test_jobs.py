"""The job queue: ordering, dependencies, cancel and retry, crash recovery, scheduling slots."""

from __future__ import annotations

import pytest

from reelface import catalogue, jobs
from reelface.daemon import scheduler
from reelface.jobs import JobError


@pytest.fixture
def conn(ws):
    c = catalogue.open_catalogue(ws.catalogue_path)
    yield c
    c.close()


def film_params(name: str) -> dict:
    return {"path": f"films/{name}/{name}.mp4", "slug": name, "hash": name * 8}


def test_priority_then_age_and_dependencies(conn) -> None:
    a, a_cluster = jobs.enqueue_film(conn, film_params("a"))
    b, _ = jobs.enqueue_film(conn, film_params("b"), cluster=False, priority=5)
    assert [j.id for j in jobs.runnable(conn)] == [b, a]  # the cluster waits for its extraction
    assert jobs.claim(conn, a, "w", None).state == "running"
    assert jobs.claim(conn, a, "w", None) is None  # claimed once
    jobs.finish(conn, a, "done")
    assert a_cluster in [j.id for j in jobs.runnable(conn)]
    assert jobs.get(conn, a).progress == 1.0


def test_training_waits_for_extraction_unless_urgent(conn) -> None:
    extract, _ = jobs.enqueue_film(conn, film_params("a"), cluster=False)
    train = jobs.enqueue(conn, "train", {"name": "run1"})
    urgent = jobs.enqueue(conn, "evaluate", {"name": "eval"}, priority=jobs.URGENT)
    assert [j.id for j in jobs.runnable(conn)] == [urgent, extract]
    jobs.claim(conn, extract, "w", None)
    jobs.finish(conn, extract, "done")
    assert train in [j.id for j in jobs.runnable(conn)]


def test_failure_cancels_dependents_and_retry_brings_them_back(conn) -> None:
    extract, cluster = jobs.enqueue_film(conn, film_params("a"))
    jobs.claim(conn, extract, "w", None)
    jobs.finish(conn, extract, "failed", "disk full")
    assert jobs.get(conn, cluster).state == "cancelled"
    job = jobs.retry(conn, extract)
    assert job.state == "queued" and job.error is None and job.attempts == 1
    assert jobs.get(conn, cluster).state == "queued"
    with pytest.raises(JobError, match="only failed or cancelled"):
        jobs.retry(conn, extract)


def test_cancel_running_is_not_overwritten_by_finish(conn) -> None:
    extract, cluster = jobs.enqueue_film(conn, film_params("a"))
    jobs.claim(conn, extract, "w", None)
    assert jobs.cancel(conn, extract).state == "cancelled"
    assert jobs.finish(conn, extract, "done") is False
    assert jobs.get(conn, extract).state == "cancelled"
    assert jobs.get(conn, cluster).state == "cancelled"
    with pytest.raises(JobError, match="already cancelled"):
        jobs.cancel(conn, extract)
    with pytest.raises(JobError, match="no job 99"):
        jobs.get(conn, 99)


def test_recover_requeues_running_and_fails_crash_loops(conn) -> None:
    a, _ = jobs.enqueue_film(conn, film_params("a"), cluster=False)
    b, _ = jobs.enqueue_film(conn, film_params("b"), cluster=False)
    jobs.claim(conn, a, "dead:1", None)
    for _ in range(3):
        jobs.claim(conn, b, "dead:1", None)
        conn.execute("UPDATE jobs SET state = 'queued' WHERE id = ?", (b,))
    jobs.claim(conn, b, "dead:1", None)
    requeued, failed = jobs.recover(conn, max_attempts=3)
    assert (requeued, failed) == ([a], [b])
    assert jobs.get(conn, a).state == "queued" and "interrupted" in jobs.get(conn, a).error
    assert "died" in jobs.get(conn, b).error
    jobs.claim(conn, a, "w", None)
    jobs.release(conn, a, "stopped")
    assert jobs.get(conn, a).attempts == 1  # a clean stop does not count as an attempt


def test_one_gpu_job_per_gpu_and_cpu_jobs_up_to_the_limit(conn) -> None:
    for name in "abc":
        jobs.enqueue_film(conn, film_params(name), cluster=False)
    jobs.enqueue(conn, "export", {"name": "e1"})
    jobs.enqueue(conn, "export", {"name": "e2"})
    slots = scheduler.Slots(gpus=2, cpu=1)
    started = scheduler.plan(jobs.runnable(conn), slots)
    assert [(j.kind, r, g) for j, r, g in started] == [
        ("extract", "gpu", 0),
        ("extract", "gpu", 1),
        ("export", "cpu", None),
    ]
    assert scheduler.plan(jobs.runnable(conn), slots) == []  # nothing claimed, all still busy
    slots.give("gpu", 0)
    assert [r for _, r, _ in scheduler.plan(jobs.runnable(conn), slots)] == ["gpu"]
    cpu_only = scheduler.Slots(gpus=0, cpu=2)
    assert [r for _, r, _ in scheduler.plan(jobs.runnable(conn), cpu_only)] == ["cpu", "cpu"]
    remote = scheduler.Slots(gpus=0, cpu=1, remote=5)
    kinds = [(j.kind, r) for j, r, _ in scheduler.plan(jobs.runnable(conn), remote)]
    assert kinds.count(("extract", "remote")) == 3 and kinds.count(("export", "cpu")) == 1
