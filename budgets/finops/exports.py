"""FOCUS exports: asked for on the finance pages, the API or `manage.py export_focus`, or made by a schedule;
built by a worker a batch at a time with the progress on the row, kept under FOCUS_EXPORT_DIR and, for a
schedule, delivered to its directory or S3 bucket. One outbox (govsite.outbox): a failed build or delivery is
recorded, shown and retried with back-off; given up after FOCUS_EXPORT_MAX_ATTEMPTS, audited."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from audit.period import Period
from budgets.finops import focus, selectors
from budgets.models import FocusExport, FocusFormat, FocusSchedule
from govsite.accounts import permissions
from govsite.accounts.models import User
from govsite.outbox import Outbox

log = logging.getLogger(__name__)


def export_dir() -> Path:
    return Path(settings.FOCUS_EXPORT_DIR)


def _given_up(export: FocusExport) -> None:
    export.finished_at = timezone.now()
    export.save(update_fields=["finished_at"])
    audit.record(
        actor=None,
        actor_label="focus-export",
        action="focus_export.failed",
        target=export,
        data={"error": export.error, "attempts": export.attempts, "schedule": export.schedule_id},
    )


EXPORTS = Outbox(
    model=FocusExport,
    job="budgets.jobs.build_focus_export",
    waiting=(FocusExport.Status.QUEUED, FocusExport.Status.RETRY),
    retry=FocusExport.Status.RETRY,
    running=FocusExport.Status.RUNNING,
    done=FocusExport.Status.DONE,
    gave_up=FocusExport.Status.FAILED,
    max_attempts=getattr(settings, "FOCUS_EXPORT_MAX_ATTEMPTS", 6),
    # The month's grouped read may run for minutes before its first batch (the lease is renewed after each).
    lease=timedelta(minutes=30),
    backoff_base=timedelta(minutes=2),
    error_field="error",
    grace=timedelta(minutes=2),
    on_give_up=_given_up,
)


def _check_format(fmt: str) -> str:
    if fmt not in FocusFormat.values:
        raise ValidationError({"format": f"Choose one of: {', '.join(FocusFormat.values)}."})
    return fmt


def _create(
    *, actor: User | None, label: str, start: date, end: date, fmt: str, strict: bool = False, schedule=None
) -> FocusExport:
    period = Period.checked(start, end)
    export = FocusExport.objects.create(
        requested_by=actor,
        requested_by_label=label,
        period_start=period.start,
        period_end=period.end,
        format=_check_format(fmt),
        strict=strict,
        schedule=schedule,
    )
    audit.record(
        actor=actor,
        actor_label=label,
        action="focus_export.requested",
        target=export,
        data={
            "period": [period.start, period.end],
            "format": fmt,
            "strict": strict,
            "schedule": schedule.name if schedule else None,
        },
    )
    return export


@transaction.atomic(durable=True)
def focus_export_start(
    *, actor: User, period_start: date, period_end: date, fmt: str, strict: bool = False
) -> FocusExport:
    """Ask for a FOCUS file of a period: a queued row, its audit event, the build job once this commits."""
    permissions.require(permissions.can_export_focus(actor), "Only admins, finance and auditors export FOCUS files.")
    export = _create(actor=actor, label=actor.email, start=period_start, end=period_end, fmt=fmt, strict=strict)
    EXPORTS.enqueue(export.pk)
    return export


@transaction.atomic(durable=True)
def focus_export_create_for_cli(
    *, label: str, period_start: date, period_end: date, fmt: str, strict: bool = False
) -> FocusExport:
    """`manage.py export_focus`: whoever runs it has the server's shell; the export is still a row and audited."""
    return _create(actor=None, label=label, start=period_start, end=period_end, fmt=fmt, strict=strict)


def focus_write(
    *, start: date, end: date, fmt: str, out: Path, strict: bool = False, on_batch: Callable | None = None
) -> focus.Totals:
    """Write a period's FOCUS file to `out` (streaming); the totals of what it holds."""
    totals = focus.Totals()
    batches = focus.focus_batches(start, end, totals=totals, strict=strict, on_batch=on_batch)
    if fmt == FocusFormat.PARQUET:
        focus.write_parquet(batches, out)
    else:
        with open(out, "w", encoding="utf-8", newline="") as handle:
            focus.write_csv(batches, handle)
    return totals


def _file_name(export: FocusExport) -> str:
    ext = "parquet" if export.format == FocusFormat.PARQUET else "csv"
    return f"focus-{export.period_start:%Y%m%d}-{export.period_end:%Y%m%d}-{export.pk}.{ext}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DeliveryFailed(Exception):
    """The file was built but could not be put where its schedule says (retried)."""


_S3_ERROR = re.compile(r"An error occurred \((\w+)\) when calling the \w+ operation: (.*)$")


def _deliver(schedule: FocusSchedule, path: Path, name: str) -> str:
    """Put the finished file where the schedule says; where it went. Raises on any failure (retried)."""
    if schedule.target == FocusSchedule.Target.S3:
        client = boto3.client(
            "s3",
            endpoint_url=schedule.s3_endpoint_url or None,
            region_name=schedule.s3_region or None,
            config=Config(retries={"max_attempts": 2}, connect_timeout=10, read_timeout=60),
        )
        key = f"{schedule.s3_prefix.strip('/')}/{name}" if schedule.s3_prefix.strip("/") else name
        where = f"s3://{schedule.s3_bucket}/{key}"
        try:
            client.upload_file(str(path), schedule.s3_bucket, key)  # multipart above 8 MB
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            found = _S3_ERROR.search(str(exc))
            reason = f"{found.group(1)}: {found.group(2)}" if found else f"{type(exc).__name__}: {exc}"
            raise DeliveryFailed(f"the upload to {where} failed: {reason}") from exc
        return where
    directory = Path(schedule.directory)
    directory.mkdir(parents=True, exist_ok=True)
    part = directory / f".{name}.part"
    shutil.copyfile(path, part)
    os.replace(part, directory / name)  # never a half-written file under the final name
    return str(directory / name)


def focus_export_build(*, export_id: int, out: Path | None = None, on_progress: Callable | None = None) -> str:
    """Build (and deliver) a queued export: the job. Safe to run twice: only the run that claims the row works.
    A failure is recorded on the row and retried after a back-off; the last one is given up and audited."""
    export = EXPORTS.claim(export_id)
    if export is None:
        return "not queued"
    period = (export.period_start, export.period_end)
    export.started_at = timezone.now()
    export.ledger_rows = selectors.ledger_rows_in(*period)
    export.ledger_rows_done = 0
    export.save(update_fields=["started_at", "ledger_rows", "ledger_rows_done"])
    name = _file_name(export)
    if out is None:
        export_dir().mkdir(parents=True, exist_ok=True)
        out = export_dir() / name
    part = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")

    def progress(totals: focus.Totals) -> None:
        EXPORTS.extend_lease(export_id, ledger_rows_done=totals.ledger_rows, focus_rows=totals.rows)
        if on_progress is not None:
            on_progress(totals, export.ledger_rows)

    try:
        totals = focus_write(
            start=period[0], end=period[1], fmt=export.format, out=part, strict=export.strict, on_batch=progress
        )
        os.replace(part, out)
        delivered = _deliver(export.schedule, out, name) if export.schedule_id else ""
    except Exception as exc:  # noqa: BLE001 - any failure (disk, S3, database) is recorded, shown and retried
        part.unlink(missing_ok=True)
        log.warning("FOCUS export %s failed: %s", export_id, exc)
        return EXPORTS.fail(export_id, exc).status
    size, digest = out.stat().st_size, _sha256(out)

    def apply(row: FocusExport) -> None:
        row.finished_at = timezone.now()
        row.ledger_rows_done = totals.ledger_rows
        row.focus_rows = totals.rows
        row.effective_cost = totals.effective_cost
        row.unpriced_rows, row.unpriced_left_out = totals.unpriced_rows, totals.left_out
        row.file_name = out.name if out.parent == export_dir() else ""
        row.size, row.sha256, row.delivered_to = size, digest, delivered or ("" if row.file_name else str(out))
        row.save()
        audit.record(
            actor=None,
            actor_label="focus-export",
            action="focus_export.built",
            target=row,
            data={
                "rows": totals.rows,
                "ledger_rows": totals.ledger_rows,
                "effective_cost": str(totals.effective_cost),
                "unpriced_rows": totals.unpriced_rows,
                "unpriced_left_out": totals.left_out,
                "sha256": digest,
                "delivered_to": delivered,
            },
        )

    EXPORTS.complete(export_id, apply=apply)
    return "done"


def focus_export_file(export: FocusExport) -> Path | None:
    if export.status != FocusExport.Status.DONE or not export.file_name:
        return None
    path = export_dir() / export.file_name
    return path if path.exists() else None


@transaction.atomic(durable=True)
def focus_export_retry(*, actor: User, export: FocusExport) -> FocusExport:
    """An admin sends a given-up export again (a fixed bucket, a directory made writable)."""
    permissions.require(permissions.can_manage_focus_schedules(actor), "Only admins retry FOCUS deliveries.")
    export = FocusExport.objects.select_for_update().get(pk=export.pk)
    if export.status != FocusExport.Status.FAILED:
        raise ValidationError({"export": "Only a failed export can be retried."})
    export.status, export.attempts, export.next_attempt_at = FocusExport.Status.QUEUED, 0, timezone.now()
    export.save(update_fields=["status", "attempts", "next_attempt_at"])
    audit.record(actor=actor, action="focus_export.retried", target=export, data={"error": export.error})
    EXPORTS.enqueue(export.pk)
    return export


def focus_exports_sweep() -> int:
    return EXPORTS.sweep()


# --- schedules ------------------------------------------------------------------------------------------------

SCHEDULE_FIELDS = (
    "name",
    "frequency",
    "format",
    "strict",
    "target",
    "directory",
    "s3_endpoint_url",
    "s3_bucket",
    "s3_prefix",
    "s3_region",
)


def _schedule_validate(data: dict) -> None:
    errors = {}
    if data.get("target") == FocusSchedule.Target.DIRECTORY:
        directory = (data.get("directory") or "").strip()
        if not directory or not Path(directory).is_absolute():
            errors["directory"] = "Give an absolute path on the server."
    elif data.get("target") == FocusSchedule.Target.S3:
        if not (data.get("s3_bucket") or "").strip():
            errors["s3_bucket"] = "Give the bucket's name."
    else:
        errors["target"] = "Choose a directory or an S3-compatible bucket."
    if data.get("frequency") not in FocusSchedule.Frequency.values:
        errors["frequency"] = "Choose daily or monthly."
    if errors:
        raise ValidationError(errors)


@transaction.atomic(durable=True)
def focus_schedule_create(*, actor: User, data: dict) -> FocusSchedule:
    permissions.require(permissions.can_manage_focus_schedules(actor), "Only admins schedule FOCUS exports.")
    _check_format(data.get("format", FocusFormat.PARQUET))
    _schedule_validate(data)
    if FocusSchedule.objects.filter(name=data["name"]).exists():
        raise ValidationError({"name": "A schedule of this name exists."})
    schedule = FocusSchedule.objects.create(created_by=actor, **data)
    audit.record(
        actor=actor,
        action="focus_schedule.created",
        target=schedule,
        data={name: getattr(schedule, name) for name in SCHEDULE_FIELDS},
    )
    return schedule


@transaction.atomic(durable=True)
def focus_schedule_set_active(*, actor: User, schedule: FocusSchedule, active: bool) -> FocusSchedule:
    permissions.require(permissions.can_manage_focus_schedules(actor), "Only admins schedule FOCUS exports.")
    schedule = FocusSchedule.objects.select_for_update().get(pk=schedule.pk)
    schedule.is_active = active
    schedule.save(update_fields=["is_active"])
    audit.record(
        actor=actor, action="focus_schedule.resumed" if active else "focus_schedule.paused", target=schedule, data={}
    )
    return schedule


def due_period(schedule: FocusSchedule, today: date) -> tuple[date, date]:
    """The period a schedule exports on `today`: yesterday, or the month before."""
    if schedule.frequency == FocusSchedule.Frequency.DAILY:
        day = today - timedelta(days=1)
        return day, day
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def focus_schedules_run(*, today: date | None = None) -> int:
    """The schedule job: for each active schedule, its due period's export, once (a unique row per schedule and
    period), audited and queued. Returns how many were made."""
    today = today or timezone.now().date()
    made = 0
    for schedule in FocusSchedule.objects.filter(is_active=True):
        start, end = due_period(schedule, today)
        if FocusExport.objects.filter(schedule=schedule, period_start=start, period_end=end).exists():
            continue
        try:
            made += _schedule_export(schedule, start, end)
        except IntegrityError:  # another run made it at the same moment
            continue
    return made


@transaction.atomic(durable=True)
def _schedule_export(schedule: FocusSchedule, start: date, end: date) -> int:
    export = _create(
        actor=None,
        label=f"schedule:{schedule.name}",
        start=start,
        end=end,
        fmt=schedule.format,
        strict=schedule.strict,
        schedule=schedule,
    )
    EXPORTS.enqueue(export.pk)
    return 1
