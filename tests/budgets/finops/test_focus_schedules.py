"""Scheduled FOCUS exports: each schedule's due period is exported once, delivered to a directory or an
S3-compatible bucket (moto's server, over real HTTP, with boto3's signed requests), audited; a failed delivery is
shown, retried with back-off, given up after the last attempt (audited) and retried by an admin."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from django.urls import reverse
from django.utils import timezone
from moto.server import ThreadedMotoServer

from audit.models import AuditEvent
from budgets.finops import exports
from budgets.models import FocusExport, FocusSchedule
from tests.budgets.finops.seed import seed_month

pytestmark = pytest.mark.django_db
MARCH_2 = date(2026, 3, 2)  # a schedule running on 2 March exports 1 March (daily) or February (monthly)


@pytest.fixture
def inline(settings, tmp_path, django_capture_on_commit_callbacks):
    """Jobs in-process once their transaction commits (as without Redis); exports under a temporary directory."""
    settings.REDIS_URL = ""
    settings.FOCUS_EXPORT_DIR = tmp_path / "exports"

    def run(call):
        with django_capture_on_commit_callbacks(execute=True):
            return call()

    return run


@pytest.fixture
def s3(monkeypatch):
    """An S3-compatible server on an ephemeral port; credentials only in the worker's environment."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    url = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    yield url, client
    server.stop()


def _schedule(admin, **fields) -> FocusSchedule:
    data = {"name": "nightly", "frequency": "daily", "format": "csv", "target": "directory", **fields}
    return exports.focus_schedule_create(actor=admin, data=data)


def test_a_schedule_writes_its_due_period_to_its_directory_once(inline, admin_user, tmp_path):
    seed_month()
    target = tmp_path / "finance-drop"
    schedule = _schedule(admin_user, frequency="monthly", directory=str(target))
    assert inline(lambda: exports.focus_schedules_run(today=MARCH_2)) == 1
    export = FocusExport.objects.get(schedule=schedule)
    assert (export.period_start, export.period_end, export.status) == (date(2026, 2, 1), date(2026, 2, 28), "done")
    delivered = target / export.file_name
    assert export.delivered_to == str(delivered) and delivered.read_bytes().startswith(b"BilledCost,")
    assert not list(target.glob(".*.part"))  # never a half-written file
    assert export.focus_rows == 8 and str(export.effective_cost) == "0.076200000"
    assert inline(lambda: exports.focus_schedules_run(today=MARCH_2)) == 0  # once per period
    actions = list(
        AuditEvent.objects.filter(target_type="budgets.focusexport", target_id=str(export.pk))
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["focus_export.requested", "focus_export.built"]
    assert AuditEvent.objects.filter(action="focus_schedule.created", target_id=str(schedule.pk)).exists()

    daily = _schedule(admin_user, name="daily", directory=str(target), format="parquet")
    inline(lambda: exports.focus_schedules_run(today=date(2026, 2, 7)))
    day = FocusExport.objects.get(schedule=daily)
    assert (day.period_start, day.period_end) == (date(2026, 2, 6), date(2026, 2, 6))
    assert pq.read_table(target / day.file_name).num_rows == 1  # the unpriced row of 6 February, null


def test_a_monthly_schedule_puts_the_file_in_an_s3_compatible_bucket(inline, admin_user, s3):
    url, client = s3
    client.create_bucket(Bucket="finops")
    seed_month()
    schedule = _schedule(
        admin_user,
        name="to s3",
        frequency="monthly",
        format="parquet",
        strict=True,
        target="s3",
        s3_endpoint_url=url,
        s3_bucket="finops",
        s3_prefix="llm/focus/",
    )
    inline(lambda: exports.focus_schedules_run(today=MARCH_2))
    export = FocusExport.objects.get(schedule=schedule)
    assert export.status == "done", export.error
    key = f"llm/focus/{export.file_name}"
    assert export.delivered_to == f"s3://finops/{key}"
    body = client.get_object(Bucket="finops", Key=key)["Body"].read()
    assert body == (exports.export_dir() / export.file_name).read_bytes()
    assert export.unpriced_left_out == 1 and export.focus_rows == 7


def test_a_failed_delivery_is_shown_retried_given_up_audited_and_retried_by_an_admin(
    inline, admin_user, s3, admin_client
):
    url, client = s3
    seed_month()
    schedule = _schedule(
        admin_user, name="broken", frequency="monthly", target="s3", s3_endpoint_url=url, s3_bucket="missing"
    )
    inline(lambda: exports.focus_schedules_run(today=MARCH_2))
    export = FocusExport.objects.get(schedule=schedule)
    assert export.status == FocusExport.Status.RETRY and "NoSuchBucket" in export.error
    assert export.next_attempt_at > timezone.now()
    page = admin_client.get(reverse("focus_exports")).content.decode()
    assert "Failed, will retry" in page and "the upload to s3://missing/" in page
    assert "NoSuchBucket: The specified bucket does not exist" in page

    # The sweeper sends it again once its back-off is over, until the attempts run out.
    later = timezone.now()
    while export.status == FocusExport.Status.RETRY:
        later += timedelta(hours=2)
        inline(lambda when=later: exports.EXPORTS.sweep(now=when))
        export.refresh_from_db()
    assert export.status == FocusExport.Status.FAILED and export.attempts == exports.EXPORTS.max_attempts
    assert AuditEvent.objects.filter(action="focus_export.failed", target_id=str(export.pk)).exists()

    client.create_bucket(Bucket="missing")  # the admin fixes the bucket, then retries
    response = inline(lambda: admin_client.post(reverse("focus_export_retry", args=[export.pk])))
    assert response.status_code == 302
    export.refresh_from_db()
    assert export.status == FocusExport.Status.DONE and export.delivered_to.startswith("s3://missing/")


def test_a_directory_that_cannot_be_written_is_a_retried_failure(inline, admin_user, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the directory should be")
    schedule = _schedule(admin_user, directory=str(blocker / "focus"))
    inline(lambda: exports.focus_schedules_run(today=MARCH_2))
    export = FocusExport.objects.get(schedule=schedule)
    assert export.status == FocusExport.Status.RETRY
    assert "NotADirectoryError" in export.error or "FileExistsError" in export.error, export.error
    blocker.unlink()
    inline(lambda: exports.EXPORTS.sweep(now=timezone.now() + timedelta(hours=1)))
    export.refresh_from_db()
    assert export.status == FocusExport.Status.DONE and Path(export.delivered_to).exists()


def test_a_schedule_needs_a_place_to_write(admin_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        _schedule(admin_user, directory="relative/path")
    assert "directory" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        _schedule(admin_user, target="s3")
    assert "s3_bucket" in error.value.message_dict
    assert not FocusSchedule.objects.exists()
