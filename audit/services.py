"""Writes of the auditor workspace: evidence exports and samples, each audited in its own transaction.
(Access-review campaigns are audit.reviews; ledger retention is budgets.retention.)"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from audit import checkpoints, evidence
from audit.models import EvidenceExport, EvidenceSample
from audit.period import Period
from audit.reports import draw_sample, sample_population
from budgets.retention import ledger_retention_months, raw_ledger_cutoff
from govsite import replica
from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from govsite.outbox import Outbox

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_SIZE = 25
MAX_SAMPLE_SIZE = 1000
EXPORT_MAX_ATTEMPTS = 3
EXPORT_QUEUE_GRACE = timedelta(minutes=2)
EXPORT_STALE_AFTER = timedelta(minutes=10)


def _export_given_up(export: EvidenceExport) -> None:
    export.finished_at = timezone.now()
    export.save(update_fields=["finished_at"])
    audit.record(
        actor=export.requested_by,
        actor_label=export.requested_by_label,
        action="evidence.export_failed",
        target=export,
        data={"error": export.error, "attempt": export.attempts},
    )


# A build that raises is not tried again (the error is shown; the auditor asks anew); one whose worker
# stopped reporting progress is, up to EXPORT_MAX_ATTEMPTS times.
EXPORTS = Outbox(
    model=EvidenceExport,
    job="audit.jobs.build_evidence_export",
    waiting=(EvidenceExport.Status.QUEUED,),
    retry=EvidenceExport.Status.QUEUED,
    running=EvidenceExport.Status.RUNNING,
    done=EvidenceExport.Status.DONE,
    gave_up=EvidenceExport.Status.FAILED,
    max_attempts=EXPORT_MAX_ATTEMPTS,
    lease=EXPORT_STALE_AFTER,
    backoff_base=timedelta(minutes=1),
    error_field="error",
    grace=EXPORT_QUEUE_GRACE,
    on_give_up=_export_given_up,
)


def _new_seed() -> str:
    return secrets.token_hex(8)


def _team_filter(teams: Iterable[Team]) -> tuple[list[int], list[str]]:
    chosen = sorted(teams, key=lambda team: team.name)
    return [team.pk for team in chosen], [team.name for team in chosen]


def _check_sample_size(size: int | None, *, allow_zero: bool) -> int:
    if size is None:
        return DEFAULT_SAMPLE_SIZE
    if size < (0 if allow_zero else 1):
        raise ValidationError({"sample_size": "Draw at least one key." if not allow_zero else "Give 0 or more keys."})
    if size > MAX_SAMPLE_SIZE:
        raise ValidationError({"sample_size": f"Draw at most {MAX_SAMPLE_SIZE} keys."})
    return size


# --- evidence exports ---------------------------------------------------------------------------------


def _export_create(
    *,
    actor: User | None,
    label: str,
    period_start,
    period_end,
    teams: Iterable[Team],
    sample_size: int | None,
    sample_seed: str,
) -> EvidenceExport:
    period = Period.checked(period_start, period_end)
    size = _check_sample_size(sample_size, allow_zero=True)
    team_ids, team_names = _team_filter(teams)
    seed = (sample_seed or "").strip()[:64] or _new_seed()
    export = EvidenceExport.objects.create(
        requested_by=actor,
        requested_by_label=label,
        period_start=period.start,
        period_end=period.end,
        filters={"team_ids": team_ids, "teams": team_names, "sample_size": size, "sample_seed": seed},
    )
    audit.record(
        actor=actor,
        actor_label=label,
        action="evidence.export_requested",
        target=export,
        data={"period": [period.start, period.end], "teams": team_names, "sample_size": size, "sample_seed": seed},
    )
    return export


@transaction.atomic(durable=True)
def evidence_export_start(
    *,
    actor: User,
    period_start,
    period_end,
    teams: Iterable[Team] = (),
    sample_size: int | None = None,
    sample_seed: str = "",
) -> EvidenceExport:
    """Ask for a bundle: a queued row, its audit event, and the build job once this commits."""
    permissions.require(permissions.can_export_evidence(actor), "Only admins and auditors export evidence.")
    export = _export_create(
        actor=actor,
        label=actor.email,
        period_start=period_start,
        period_end=period_end,
        teams=teams,
        sample_size=sample_size,
        sample_seed=sample_seed,
    )
    EXPORTS.enqueue(export.pk)
    return export


@transaction.atomic(durable=True)
def evidence_export_create_for_cli(
    *, label: str, period_start, period_end, teams: Iterable[Team] = (), sample_size=None, sample_seed=""
) -> EvidenceExport:
    """`manage.py export_evidence`: whoever runs it has the server's shell, so no role is checked; the
    export is still a row and an audited event."""
    return _export_create(
        actor=None,
        label=label,
        period_start=period_start,
        period_end=period_end,
        teams=teams,
        sample_size=sample_size,
        sample_seed=sample_seed,
    )


def _bundle_request(export: EvidenceExport) -> evidence.BundleRequest:
    filters = export.filters or {}
    return evidence.BundleRequest(
        period=Period(export.period_start, export.period_end),
        team_ids=list(filters.get("team_ids") or []),
        team_names=list(filters.get("teams") or []),
        sample_size=int(filters.get("sample_size") or 0),
        sample_seed=str(filters.get("sample_seed") or ""),
        exported_by=export.requested_by_label,
        exported_at=export.started_at or timezone.now(),
        export_id=export.pk,
        retention_months=ledger_retention_months(),
        raw_ledger_from=raw_ledger_cutoff(),
    )


def evidence_export_build(*, export_id: int, out: Path | None = None) -> str:
    """Build a queued export (the job). Safe to run twice: only the run that claims the row builds.

    The file is written beside its final name and renamed once complete, so a half-written bundle is
    never offered for download. A failure is recorded on the row and in the audit log, then raised.
    """
    export = EXPORTS.claim(export_id)
    if export is None:
        return "not queued"
    now = timezone.now()
    export.started_at, export.heartbeat_at, export.progress, export.step, export.error = now, now, 0, "starting", ""
    export.save(update_fields=["started_at", "heartbeat_at", "progress", "step", "error"])
    if out is None:
        directory = evidence.export_dir()
        directory.mkdir(parents=True, exist_ok=True)
        out = directory / f"evidence-{export.pk}-{secrets.token_hex(6)}.zip"
    part = out.with_name(out.name + ".part")

    def progress(percent: int, step: str) -> None:
        EXPORTS.extend_lease(export_id, progress=percent, step=step[:120], heartbeat_at=timezone.now())

    try:
        # Signed before the bundle is built, so the bundle carries a head that its own verification covers.
        signed = checkpoints.checkpoint_write(reason=f"evidence export #{export.pk}")
        request = dataclasses.replace(
            _bundle_request(export),
            checkpoint=signed,
            public_key_pem=checkpoints.public_pem(checkpoints.private_key().public_key()),
        )
        # The bundle's many reads may come from the replica, once it has replayed the checkpoint just signed.
        with replica.replica_reads(caught_up=True):
            result = evidence.build_bundle(part, request, progress)
        part.replace(out)
        digest = evidence.file_sha256(out)
    except Exception as exc:
        part.unlink(missing_ok=True)
        EXPORTS.fail(export_id, exc, retryable=False)
        raise
    in_export_dir = out.parent == evidence.export_dir()
    EXPORTS.complete(
        export_id,
        apply=lambda export: _export_done(export, out=out, result=result, digest=digest, in_export_dir=in_export_dir),
    )
    return "done"


def _export_done(
    export: EvidenceExport, *, out: Path, result: evidence.BundleResult, digest: str, in_export_dir: bool
) -> None:
    export.progress = 100
    export.step = ""
    export.finished_at = timezone.now()
    export.row_counts = result.row_counts
    export.failed_checks = result.failed_checks
    export.chain_ok = result.chain.ok
    export.file_name = out.name if in_export_dir else ""
    export.file_size = out.stat().st_size
    export.sha256 = digest
    export.manifest_sha256 = result.manifest_sha256
    export.save()
    audit.record(
        actor=export.requested_by,
        actor_label=export.requested_by_label,
        action="evidence.exported",
        target=export,
        data={
            "period": [export.period_start, export.period_end],
            "filters": export.filters,
            "row_counts": result.row_counts,
            "failed_checks": result.failed_checks,
            "audit_chain": result.chain.line(),
            "sha256": digest,
            "manifest_sha256": result.manifest_sha256,
            "bytes": export.file_size,
            "file": out.name if in_export_dir else str(out),
        },
    )


def evidence_exports_sweep(*, now=None) -> int:
    """Send again what the queue lost: queued exports nobody picked up, and running ones whose worker
    stopped reporting progress (after EXPORT_MAX_ATTEMPTS they are marked failed)."""
    return EXPORTS.sweep(now=now)


@transaction.atomic(durable=True)
def evidence_export_downloaded(*, actor: User, export: EvidenceExport) -> None:
    """Who took a copy of the evidence, and when."""
    permissions.require(permissions.can_export_evidence(actor), "Only admins and auditors download evidence.")
    audit.record(actor=actor, action="evidence.downloaded", target=export, data={"sha256": export.sha256})


def export_file(export: EvidenceExport) -> Path | None:
    """The export's file, only ever inside the export directory."""
    if export.status != EvidenceExport.Status.DONE or not export.file_name:
        return None
    directory = evidence.export_dir().resolve()
    path = (directory / export.file_name).resolve()
    if path.parent != directory or not path.is_file():
        return None
    return path


# --- samples ----------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def evidence_sample_draw(
    *, actor: User, period_start, period_end, size: int | None, seed: str = "", teams: Iterable[Team] = ()
) -> EvidenceSample:
    """Draw N of the keys created in a period; the same seed, period and teams draw the same keys."""
    permissions.require(permissions.can_draw_sample(actor), "Only admins and auditors draw samples.")
    period = Period.checked(period_start, period_end)
    if size is None or size < 1:
        raise ValidationError({"size": "Draw at least one key."})
    team_ids, team_names = _team_filter(teams)
    population = list(sample_population(period, team_ids or None))
    if not population:
        raise ValidationError({"period_start": f"No key was created from {period}: there is nothing to sample."})
    if size > len(population):
        made = "1 key was" if len(population) == 1 else f"{len(population)} keys were"
        raise ValidationError({"size": f"Only {made} created from {period}; draw at most {len(population)}."})
    seed = (seed or "").strip()[:64] or _new_seed()
    key_ids = draw_sample(population, size=size, seed=seed)
    sample = EvidenceSample.objects.create(
        drawn_by=actor,
        drawn_by_label=actor.email,
        period_start=period.start,
        period_end=period.end,
        team_ids=team_ids,
        size=size,
        seed=seed,
        population=len(population),
        key_ids=key_ids,
    )
    audit.record(
        actor=actor,
        action="evidence.sample_drawn",
        target=sample,
        data={
            "period": [period.start, period.end],
            "teams": team_names,
            "size": size,
            "seed": seed,
            "population": len(population),
            "key_ids": key_ids,
        },
    )
    return sample
