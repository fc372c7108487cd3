"""Three RQ workers and two cron schedulers as real processes over a burst: each scheduled job runs once per
period (govsite.scheduling), overlapping ingest batches run side by side book each request once, and an evidence
export whose job is sent three times is built once (its outbox claim)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from django_rq import get_queue
from rq.exceptions import InvalidJobOperation

from audit import services as audit_services
from audit.models import AuditEvent, EvidenceExport
from budgets.models import DailyRollup, SpendRecord
from tests.factories import SpendLogRowFactory
from tests.keys.conftest import _database_url

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_conn(settings):
    import redis

    url = os.environ.get("REDIS_URL")
    if connection.vendor != "postgresql":
        pytest.skip("worker processes share the test database, which needs PostgreSQL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI sets REDIS_URL")
        pytest.skip("needs Redis (REDIS_URL)")
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    settings.REDIS_URL = url
    settings.RQ_QUEUES = {"default": {"URL": url, "DEFAULT_TIMEOUT": 300}}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    yield conn
    conn.flushdb()


def _start(*args: str, files: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "EVIDENCE_EXPORT_DIR": str(files / "exports"),
        "AUDIT_CHECKPOINT_DIR": str(files / "audit-checkpoints"),
        "AUDIT_CHECKPOINT_KEY_FILE": str(files / "audit-key" / "checkpoint-ed25519.pem"),
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "localhost",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _status(job) -> str:
    try:
        return job.get_status(refresh=True)
    except InvalidJobOperation:  # read while the worker rewrites the job's hash: ask again on the next round
        return "unknown"


def test_three_workers_and_two_schedulers_do_no_work_twice(redis_conn, world, tmp_path):
    processes = [_start("rqworker", "default", files=tmp_path) for _ in range(3)]
    try:
        # A burst of ingest jobs whose batches overlap (as the pull's overlap, the push and the completeness
        # pass do): 8 batches of 60 rows over 300 requests, most requests in two batches.
        start = datetime(2026, 11, 2, 8, tzinfo=UTC)
        rows = [
            SpendLogRowFactory(request_id=f"burst-{n}", start_time=(start + timedelta(seconds=n)).replace(tzinfo=None))
            for n in range(300)
        ]
        queue = get_queue("default")
        jobs = [
            queue.enqueue("budgets.ingest.ingest_spend_rows", rows[(i * 31) % 240 : (i * 31) % 240 + 60], "pull")
            for i in range(8)
        ]
        jobs += [queue.enqueue("budgets.ingest.ingest_spend_rows", rows[240:], "push") for _ in range(2)]
        # An evidence export, its build job sent three times (the sweeper's resend, a retry): built once.
        today = timezone.now().date()
        export = audit_services.evidence_export_start(
            actor=world.users["auditor"], period_start=today, period_end=today
        )
        for _ in range(2):
            queue.enqueue("audit.jobs.build_evidence_export", export.pk)
        processes += [_start("rqcron", "tests.cron_burst", files=tmp_path) for _ in range(2)]
        deadline = time.monotonic() + 300  # a bound on waiting, not a measure
        while time.monotonic() < deadline:
            ticks = [int(t) for t in redis_conn.lrange("test:ticks", 0, -1)]
            done = all(_status(job) in ("finished", "failed") for job in jobs)
            built = EvidenceExport.objects.filter(pk=export.pk, status__in=["done", "failed"]).exists()
            if done and built and len(set(ticks)) >= 4:
                break
            time.sleep(0.5)
        statuses = Counter(_status(job) for job in jobs)
        assert statuses == {"finished": len(jobs)}, statuses
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:  # a worker in the middle of a job: it is ours to stop
                process.kill()
                process.wait(10)

    covered = {row["request_id"] for i in range(8) for row in rows[(i * 31) % 240 : (i * 31) % 240 + 60]}
    covered |= {row["request_id"] for row in rows[240:]}
    booked = list(SpendRecord.objects.values_list("request_id", flat=True))
    assert len(booked) == len(set(booked)) == len(covered)
    assert sum(DailyRollup.objects.values_list("requests", flat=True)) == len(covered)
    assert sum(job.return_value().inserted for job in jobs) == len(covered)

    export.refresh_from_db()
    assert export.status == EvidenceExport.Status.DONE, export.error
    assert AuditEvent.objects.filter(action="evidence.exported", target_id=str(export.pk)).count() == 1
    assert len(list((tmp_path / "exports").glob("evidence-*.zip"))) == 1

    ticks = Counter(int(t) for t in redis_conn.lrange("test:ticks", 0, -1))
    assert len(ticks) >= 4, ticks  # both schedulers enqueued every period ...
    assert set(ticks.values()) == {1}, ticks  # ... and each period's tick ran once
