"""The RQ worker `manage.py rqworker` runs (govsite.worker): litellm's request models and the job modules are
loaded once, in the worker, before any job; a gateway command runs in the worker's own process, any other
job in a forked child that inherits what the worker loaded. Real Redis, real `rqworker --burst` processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from govsite import worker
from tests.gateway_fixtures import unavailable

ROOT = Path(__file__).resolve().parents[1]
QUEUE = "default"  # the queue settings.RQ_QUEUES declares (django-rq refuses others)


def what_the_job_found() -> dict:
    """The job: what was already imported when it started, and in which process it ran."""
    return {
        "litellm_loaded": "litellm.proxy._types" in sys.modules,
        "key_jobs_loaded": "keys.jobs" in sys.modules,
        "pid": os.getpid(),
    }


@pytest.fixture
def queue():
    import redis
    from rq import Queue

    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set (the SQLite run); CI sets it")
    conn = redis.Redis.from_url(url)
    try:
        conn.ping()
    except redis.ConnectionError:
        unavailable("Redis is not reachable")
    q = Queue(QUEUE, connection=conn)
    q.empty()
    yield q
    q.empty()


def _run_burst(*extra: str) -> int:
    """A real `manage.py rqworker --burst` over the test queue; returns its pid once it has drained it."""
    process = subprocess.Popen(  # noqa: S603 - this interpreter and this manage.py
        [sys.executable, "manage.py", "rqworker", QUEUE, "--burst", *extra],
        cwd=ROOT,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = process.communicate(timeout=180)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    return process.pid


def test_the_default_worker_has_litellm_loaded_before_a_forked_job_starts(queue):
    job = queue.enqueue(what_the_job_found)
    pid = _run_burst()
    job.refresh()
    found = job.return_value()
    assert found["litellm_loaded"] and found["key_jobs_loaded"]
    assert found["pid"] != pid  # not a short job: it ran in a child of the worker


def test_rq_plain_worker_leaves_each_job_to_import_litellm_itself(queue):
    # The start-up cost the issue measured: the plain worker's children begin without litellm.
    job = queue.enqueue(what_the_job_found)
    _run_burst("--worker-class", "rq.worker.Worker")
    job.refresh()
    assert job.return_value()["litellm_loaded"] is False


def test_a_gateway_command_job_runs_in_the_worker_process_itself():
    assert "keys.jobs.run_gateway_command" in worker.IN_PROCESS_JOBS
    assert "audit.jobs.build_evidence_export" not in worker.IN_PROCESS_JOBS  # long and memory-hungry: forked


def test_a_scheduled_short_job_runs_in_process_through_the_once_per_period_wrapper():
    from redis import Redis  # noqa: PLC0415
    from rq.job import Job  # noqa: PLC0415

    from govsite import scheduling  # noqa: PLC0415

    connection = Redis()  # not contacted: the jobs are only built, never saved
    sweep = Job.create(
        scheduling.run_once_per_period, args=("keys.jobs.sweep_gateway_commands", 60), connection=connection
    )
    export = Job.create(
        scheduling.run_once_per_period, args=("budgets.jobs.pull_spend_logs", 60), connection=connection
    )
    assert worker.runs_in_process(sweep)
    assert not worker.runs_in_process(export)
