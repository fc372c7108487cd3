"""The evidence reports: each a read over one period, yielding flat rows an auditor can open as CSV.

Every report is streamed: querysets are read with `.iterator(chunk_size=...)`, related rows are
fetched a chunk at a time, and nothing holds a whole table in memory. Rows carry only JSON-native
values (datetimes as ISO 8601 UTC strings, money as decimal strings) so the CSV and the JSON file of
a report say exactly the same thing. A column named `check_*` holds PASS, FAIL or N/A; the bundle
counts every FAIL and lists them first in its summary.

The pages (leaver report, sample page, campaign report) read the same functions.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice

from django.conf import settings
from django.db.models import Max, Prefetch, Q, QuerySet, Sum

from audit.models import AccessReview, AccessReviewItem, AuditEvent
from audit.period import Period
from budgets.models import BudgetIncreaseRequest, DailyRollup
from govsite.accounts.models import Membership, OrgRoleGrant, Team, TeamRole, User
from keys.models import Approval, KeyKind, KeyRequest, VirtualKey

CHUNK = 2000
PASS, FAIL, NA = "PASS", "FAIL", "N/A"
KEY_TARGET = "keys.virtualkey"
REQUEST_TARGET = "keys.keyrequest"
USER_TARGET = "accounts.user"


def leaver_sla() -> timedelta:
    """How long a departed person's key may stay live before the leaver check fails."""
    return timedelta(hours=getattr(settings, "LEAVER_REVOCATION_SLA_HOURS", 24))


# --- small helpers -----------------------------------------------------------------------------------


def iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value.isoformat()


def money(value) -> str | None:
    return None if value is None else str(value)


def chunks(iterable: Iterable, size: int = CHUNK) -> Iterator[list]:
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


def hours_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 3600, 2)


def _email(user) -> str | None:
    return user.email if user is not None else None


def team_names() -> dict[int, str]:
    return dict(Team.objects.values_list("pk", "name"))


# --- the two checks on a key's creation (CC6.2) ------------------------------------------------------


@dataclass(frozen=True)
class CreationChecks:
    approver_not_requester: str
    approved_before_created: str
    detail: str


def creation_checks(key: VirtualKey, request: KeyRequest | None, approvals: list[Approval]) -> CreationChecks:
    """ "Approver is not the requester" and "approved before created" for one key.

    `approvals` are the request's approve decisions. A key adopted from the gateway has no request:
    both checks are N/A and the detail says so (the adoption itself is an admin's audited decision).
    """
    if request is None:
        return CreationChecks(NA, NA, "adopted from the gateway: no key request")
    notes = []
    own = {request.requested_by_id, request.owner_id}
    people = [a for a in approvals if not a.by_policy and a.approver_id is not None]
    if any(a.approver_id in own for a in people):
        approver_check = FAIL
        notes.append("approved by its own requester or owner")
    elif people:
        approver_check = PASS
    elif request.approved_by_policy:
        approver_check = PASS
        notes.append("approved by the team's auto-approve policy")
    else:
        approver_check = FAIL
        notes.append("no approval recorded")
    approved_at = request.decided_at if request.status == KeyRequest.Status.APPROVED else None
    latest = max((a.created_at for a in people), default=None)
    if approved_at is None:
        order_check = FAIL
        notes.append(f"request is {request.status}, not approved")
    elif approved_at > key.created_at or (latest is not None and latest > key.created_at):
        order_check = FAIL
        notes.append("key created before its approval")
    else:
        order_check = PASS
    return CreationChecks(approver_check, order_check, "; ".join(notes))


def _approval_text(a: Approval) -> str:
    who = "team policy" if a.by_policy else (a.approver.email if a.approver else "?")
    admin = " (admin)" if a.as_admin else ""
    return f"{a.decision} by {who}{admin} at {iso(a.created_at)}"


def _approvals_prefetch(prefix: str = "request__") -> Prefetch:
    return Prefetch(f"{prefix}approvals", queryset=Approval.objects.select_related("approver").order_by("created_at"))


def _approves(approvals: list[Approval]) -> list[Approval]:
    return [a for a in approvals if a.decision == Approval.Decision.APPROVE]


def _approvals_by_request(request_ids: list[int]) -> dict[int, list[Approval]]:
    """The decisions on a chunk of requests, in one query (a Prefetch with its own queryset would run
    Django's per-object filtering for every row, which costs more than the query)."""
    found: dict[int, list[Approval]] = defaultdict(list)
    if request_ids:
        for approval in (
            Approval.objects.filter(request_id__in=request_ids).select_related("approver").order_by("created_at", "pk")
        ):
            found[approval.request_id].append(approval)
    return found


def _with_approvals(rows: Iterable, request_id: Callable) -> Iterator[tuple]:
    """(row, its request's approvals) for rows read a chunk at a time."""
    for batch in chunks(rows):
        approvals = _approvals_by_request([request_id(row) for row in batch if request_id(row)])
        for row in batch:
            yield row, approvals.get(request_id(row), [])


# --- key inventory (CC6.1) ---------------------------------------------------------------------------


def status_at(key: VirtualKey, at: datetime) -> str:
    """What the key was at an instant, from its timestamps (the status column is only today's)."""
    if key.revoked_at and key.revoked_at < at:
        return VirtualKey.Status.REVOKED
    if key.revoke_requested_at and key.revoke_requested_at < at:
        return VirtualKey.Status.REVOKING
    if key.expires_at <= at:
        return VirtualKey.Status.EXPIRED
    provisioned = key.provisioned_at or (
        key.created_at if key.status not in (VirtualKey.Status.PROVISIONING, VirtualKey.Status.FAILED) else None
    )
    if provisioned and provisioned < at:
        return VirtualKey.Status.ACTIVE
    return VirtualKey.Status.FAILED if key.status == VirtualKey.Status.FAILED else VirtualKey.Status.PROVISIONING


def inventory_queryset(period: Period, team_ids: list[int] | None = None) -> QuerySet[VirtualKey]:
    """Every key that existed at the period's end and was not already gone before it started."""
    qs = (
        VirtualKey.objects.filter(created_at__lt=period.end_before)
        .exclude(revoked_at__lt=period.start_at)
        .exclude(status=VirtualKey.Status.EXPIRED, expires_at__lt=period.start_at)
    )
    if team_ids:
        qs = qs.filter(team_id__in=team_ids)
    return qs


INVENTORY_COLUMNS = (
    "key_id", "alias", "kind", "service_name", "owner", "owner_active", "team", "data_classification",
    "created_by", "created_at", "request_id", "approvers", "approved_by_policy", "expires_at", "models",
    "monthly_budget", "budget_duration", "rpm_limit", "tpm_limit", "last_used_at", "last_used_day",
    "status_at_period_end", "status_now", "revoke_requested_at", "revoked_at", "revoke_reason",
)  # fmt: skip


def grants_before_later_reductions(period: Period) -> dict[int, dict]:
    """{key id: {"models": [...], "max_budget": "..."}} as they were when the period ended, for the keys
    whose grants were reduced after it (the only change made to a key's models or budget after it is
    created is an access-review reduction, and its audit event keeps what the key had before)."""
    found: dict[int, dict] = {}
    reductions = AuditEvent.objects.filter(
        action="key.reduced", target_type=KEY_TARGET, created_at__gte=period.end_before
    ).order_by("seq")
    for target_id, data in reductions.values_list("target_id", "data").iterator(chunk_size=CHUNK):
        if target_id.isdigit() and int(target_id) not in found:
            data = data or {}
            found[int(target_id)] = {
                "models": (data.get("models") or {}).get("before"),
                "max_budget": (data.get("max_budget") or {}).get("before"),
            }
    return found


def inventory_rows(period: Period, team_ids: list[int] | None = None) -> Iterator[dict]:
    earlier_grants = grants_before_later_reductions(period)
    last_day = dict(
        DailyRollup.objects.filter(day__lte=period.end, key__isnull=False, requests__gt=0)
        .values("key_id")
        .annotate(last=Max("day"))
        .values_list("key_id", "last")
    )
    qs = (
        inventory_queryset(period, team_ids)
        .select_related("owner", "team", "request__requested_by", "request__data_classification")
        .order_by("pk")
    )
    for key, approvals in _with_approvals(qs.iterator(chunk_size=CHUNK), lambda key: key.request_id):
        request = key.request
        then = earlier_grants.get(key.pk, {})
        models = then.get("models")
        budget = then.get("max_budget")
        yield {
            "key_id": key.pk,
            "alias": key.alias,
            "kind": key.kind,
            "service_name": key.service_name,
            "owner": key.owner.email,
            "owner_active": key.owner.is_active,
            "team": key.team.name,
            "data_classification": request.data_classification.label if request else None,
            "created_by": _email(request.requested_by) if request else None,
            "created_at": iso(key.created_at),
            "request_id": key.request_id,
            "approvers": [_approval_text(a) for a in _approves(approvals)],
            "approved_by_policy": request.approved_by_policy if request else None,
            "expires_at": iso(key.expires_at),
            "models": list(models) if models is not None else list(key.allowed_models),
            "monthly_budget": str(budget) if budget is not None else money(key.max_budget),
            "budget_duration": key.budget_duration,
            "rpm_limit": key.rpm_limit,
            "tpm_limit": key.tpm_limit,
            "last_used_at": iso(key.last_used_at),
            "last_used_day": iso(last_day.get(key.pk)),
            "status_at_period_end": status_at(key, period.end_before),
            "status_now": key.status,
            "revoke_requested_at": iso(key.revoke_requested_at),
            "revoked_at": iso(key.revoked_at),
            "revoke_reason": key.revoke_reason,
        }


# --- key lifecycle (CC6.2, CC6.3) --------------------------------------------------------------------


def _in(field: str, period: Period) -> Q:
    return Q(**{f"{field}__gte": period.start_at, f"{field}__lt": period.end_before})


def lifecycle_keys(period: Period, team_ids: list[int] | None = None) -> QuerySet[VirtualKey]:
    """Keys requested, approved, created, provisioned, rotated, revoked or expired in the period."""
    qs = VirtualKey.objects.filter(
        _in("created_at", period)
        | _in("provisioned_at", period)
        | _in("revoke_requested_at", period)
        | _in("revoked_at", period)
        | _in("request__created_at", period)
        | _in("request__decided_at", period)
        | (Q(status=VirtualKey.Status.EXPIRED) & _in("expires_at", period))
    )
    return qs.filter(team_id__in=team_ids) if team_ids else qs


def lifecycle_requests_without_key(period: Period, team_ids: list[int] | None = None) -> QuerySet[KeyRequest]:
    """Requests made or decided in the period that never produced a key (rejected, cancelled, pending)."""
    qs = KeyRequest.objects.filter(_in("created_at", period) | _in("decided_at", period)).filter(keys__isnull=True)
    return qs.filter(team_id__in=team_ids) if team_ids else qs


LIFECYCLE_COLUMNS = (
    "request_id", "key_id", "key_alias", "kind", "service_name", "team", "owner", "requested_by", "requested_at",
    "justification", "request_status", "decided_at", "approvals", "rejected_by", "approved_by_policy",
    "decision_note", "key_created_at", "provisioned_at", "rotated_from", "rotated_to", "revoke_requested_at",
    "revoked_at", "revoked_by", "revoke_reason", "expired_at", "key_status_now",
    "check_approver_not_requester", "check_approved_before_created", "check_detail",
)  # fmt: skip


def _request_part(request: KeyRequest | None, approvals: list[Approval]) -> dict:
    if request is None:
        return dict.fromkeys(
            ("request_id", "requested_by", "requested_at", "justification", "request_status", "decided_at"), None
        ) | {"approvals": [], "rejected_by": None, "approved_by_policy": None, "decision_note": None}
    rejects = [a for a in approvals if a.decision == Approval.Decision.REJECT]
    return {
        "request_id": request.pk,
        "requested_by": request.requested_by.email,
        "requested_at": iso(request.created_at),
        "justification": request.purpose,
        "request_status": request.status,
        "decided_at": iso(request.decided_at),
        "approvals": [_approval_text(a) for a in approvals if a.decision == Approval.Decision.APPROVE],
        "rejected_by": ", ".join(_email(a.approver) or "?" for a in rejects) or None,
        "approved_by_policy": request.approved_by_policy,
        "decision_note": request.decision_note,
    }


def lifecycle_rows(period: Period, team_ids: list[int] | None = None) -> Iterator[dict]:
    keys = (
        lifecycle_keys(period, team_ids)
        .select_related("owner", "team", "revoked_by", "rotated_from", "rotated_to", "request__requested_by")
        .order_by("pk")
    )
    for key, approvals in _with_approvals(keys.iterator(chunk_size=CHUNK), lambda key: key.request_id):
        request = key.request
        checks = creation_checks(key, request, _approves(approvals))
        rotated_to = getattr(key, "rotated_to", None)
        yield {
            **_request_part(request, approvals),
            "key_id": key.pk,
            "key_alias": key.alias,
            "kind": key.kind,
            "service_name": key.service_name,
            "team": key.team.name,
            "owner": key.owner.email,
            "key_created_at": iso(key.created_at),
            "provisioned_at": iso(key.provisioned_at),
            "rotated_from": key.rotated_from.alias if key.rotated_from else None,
            "rotated_to": rotated_to.alias if rotated_to else None,
            "revoke_requested_at": iso(key.revoke_requested_at),
            "revoked_at": iso(key.revoked_at),
            "revoked_by": _email(key.revoked_by) or ("system" if key.revoke_requested_at else None),
            "revoke_reason": key.revoke_reason,
            "expired_at": iso(key.expires_at) if key.status == VirtualKey.Status.EXPIRED else None,
            "key_status_now": key.status,
            "check_approver_not_requester": checks.approver_not_requester,
            "check_approved_before_created": checks.approved_before_created,
            "check_detail": checks.detail,
        }
    requests = (
        lifecycle_requests_without_key(period, team_ids).select_related("owner", "team", "requested_by").order_by("pk")
    )
    for request, approvals in _with_approvals(requests.iterator(chunk_size=CHUNK), lambda request: request.pk):
        yield {
            **_request_part(request, approvals),
            "key_id": None,
            "key_alias": None,
            "kind": request.kind,
            "service_name": request.service_name,
            "team": request.team.name,
            "owner": request.owner.email,
            "key_created_at": None,
            "provisioned_at": None,
            "rotated_from": None,
            "rotated_to": None,
            "revoke_requested_at": None,
            "revoked_at": None,
            "revoked_by": None,
            "revoke_reason": None,
            "expired_at": None,
            "key_status_now": None,
            "check_approver_not_requester": NA,
            "check_approved_before_created": NA,
            "check_detail": f"no key was created (request {request.status})",
        }


def lifecycle_count(period: Period, team_ids: list[int] | None = None) -> int:
    return lifecycle_keys(period, team_ids).count() + lifecycle_requests_without_key(period, team_ids).count()


# --- samples (CC6.2) -----------------------------------------------------------------------------------


def sample_population(period: Period, team_ids: list[int] | None = None) -> QuerySet:
    """The keys created in the period, by ascending id: the population a sample is drawn from."""
    qs = VirtualKey.objects.filter(_in("created_at", period))
    if team_ids:
        qs = qs.filter(team_id__in=team_ids)
    return qs.order_by("pk").values_list("pk", flat=True)


def draw_sample(population: list[int], *, size: int, seed: str) -> list[int]:
    """`random.Random(seed).sample(population, size)`: the same seed and population give the same keys,
    in the same order, on any machine (a str seed is hashed with SHA-512 by Python's Random)."""
    return random.Random(seed).sample(population, size)


SAMPLE_COLUMNS = (
    "position", "key_id", "key_alias", "team", "kind", "service_name", "owner", "request_id", "requested_by",
    "requested_at", "justification", "data_classification", "requested_models", "monthly_budget", "expiry_days",
    "approvals", "approved_at", "key_created_at", "provisioning_requested_at", "provisioned_at", "events",
    "check_approver_not_requester", "check_approved_before_created", "check_service_key_owner", "check_detail",
)  # fmt: skip


def sample_rows(key_ids: list[int]) -> Iterator[dict]:
    """One row per sampled key, in draw order: its request, justification, every decision and the
    provisioning events, with the two creation checks."""
    position = {key_id: n for n, key_id in enumerate(key_ids, start=1)}
    for batch in chunks(key_ids, 500):
        keys = {
            key.pk: key
            for key in VirtualKey.objects.filter(pk__in=batch)
            .select_related("owner", "team", "request__requested_by", "request__data_classification")
            .prefetch_related(_approvals_prefetch(), "request__requested_models")
        }
        request_ids = [str(k.request_id) for k in keys.values() if k.request_id]
        events: dict[tuple[str, str], list[dict]] = defaultdict(list)
        qs = AuditEvent.objects.filter(
            Q(target_type=KEY_TARGET, target_id__in=[str(pk) for pk in keys])
            | Q(target_type=REQUEST_TARGET, target_id__in=request_ids)
        ).order_by("seq")
        for seq, at, action, actor, target_type, target_id in qs.values_list(
            "seq", "created_at", "action", "actor_label", "target_type", "target_id"
        ):
            events[(target_type, target_id)].append({"seq": seq, "at": iso(at), "action": action, "actor": actor})
        for key_id in batch:
            key = keys.get(key_id)
            if key is None:
                continue
            request = key.request
            approvals = list(request.approvals.all()) if request else []
            checks = creation_checks(key, request, _approves(approvals))
            key_events = events[(KEY_TARGET, str(key.pk))]
            request_events = events[(REQUEST_TARGET, str(key.request_id))] if request else []
            first = {}
            for event in key_events:
                first.setdefault(event["action"], event)
            owner_check = NA
            if key.kind == KeyKind.SERVICE:
                owner_check = PASS if key.owner_id and key.owner.is_active else FAIL
            yield {
                "position": position[key_id],
                "key_id": key.pk,
                "key_alias": key.alias,
                "team": key.team.name,
                "kind": key.kind,
                "service_name": key.service_name,
                "owner": key.owner.email,
                "request_id": key.request_id,
                "requested_by": request.requested_by.email if request else None,
                "requested_at": iso(request.created_at) if request else None,
                "justification": request.purpose if request else None,
                "data_classification": request.data_classification.label if request else None,
                "requested_models": sorted(m.name for m in request.requested_models.all()) if request else [],
                "monthly_budget": money(request.monthly_budget) if request else None,
                "expiry_days": request.expiry_days if request else None,
                "approvals": [
                    {
                        "decision": a.decision,
                        "approver": "team policy" if a.by_policy else _email(a.approver),
                        "as_admin": a.as_admin,
                        "note": a.note,
                        "at": iso(a.created_at),
                    }
                    for a in approvals
                ],
                "approved_at": iso(request.decided_at) if request else None,
                "key_created_at": iso(key.created_at),
                "provisioning_requested_at": (first.get("key.provisioning_requested") or {}).get("at"),
                "provisioned_at": iso(key.provisioned_at) or (first.get("key.provisioned") or {}).get("at"),
                "events": request_events + key_events,
                "check_approver_not_requester": checks.approver_not_requester,
                "check_approved_before_created": checks.approved_before_created,
                "check_service_key_owner": owner_check,
                "check_detail": checks.detail,
            }


# --- leavers (CC6.3) ----------------------------------------------------------------------------------


@dataclass
class Leaver:
    user: User
    deactivated_at: datetime
    deactivated_by: str
    reason: str
    event_seq: int | None


def leavers(period: Period) -> Iterator[Leaver]:
    """Every deactivation in the period: from the audit log, plus anyone whose deactivated_at falls in
    the period without an event (written around the services: flagged by `event_seq` None)."""
    seen: set[int] = set()
    events = AuditEvent.objects.filter(
        action="user.deactivated", target_type=USER_TARGET, created_at__gte=period.start_at
    ).filter(created_at__lt=period.end_before)
    for batch in chunks(
        events.order_by("seq").values_list("seq", "created_at", "actor_label", "target_id", "data").iterator(CHUNK)
    ):
        users = User.objects.in_bulk([int(row[3]) for row in batch if row[3].isdigit()])
        for seq, at, actor, target_id, data in batch:
            user = users.get(int(target_id)) if target_id.isdigit() else None
            if user is None:
                continue
            seen.add(user.pk)
            yield Leaver(user, at, actor, (data or {}).get("reason", ""), seq)
    quiet = User.objects.filter(deactivated_at__gte=period.start_at, deactivated_at__lt=period.end_before).exclude(
        pk__in=seen
    )
    for user in quiet.order_by("deactivated_at").iterator(CHUNK):
        yield Leaver(user, user.deactivated_at, "", "", None)


LEAVER_COLUMNS = (
    "person", "person_active_now", "deactivated_at", "deactivated_by", "reason", "audit_event_seq", "key_id",
    "key_alias", "kind", "team", "key_status_now", "revoke_requested_at", "revoked_at", "ended_at", "delay_hours",
    "check_key_removed_in_time", "check_detail",
)  # fmt: skip


def _leaver_key_row(leaver: Leaver, key: VirtualKey | None, now: datetime) -> dict:
    base = {
        "person": leaver.user.email,
        "person_active_now": leaver.user.is_active,
        "deactivated_at": iso(leaver.deactivated_at),
        "deactivated_by": leaver.deactivated_by or None,
        "reason": leaver.reason or None,
        "audit_event_seq": leaver.event_seq,
    }
    if key is None:
        return base | dict.fromkeys(LEAVER_COLUMNS[6:], None) | {"check_key_removed_in_time": NA}
    ended = key.revoked_at or (key.expires_at if key.status == VirtualKey.Status.EXPIRED else None)
    sla = leaver_sla()
    overdue = now - leaver.deactivated_at > sla
    if key.kind == KeyKind.SERVICE and key.is_live:
        # Service keys outlive their owner by design (approvers reassign them); still owned by a leaver is orphaned.
        check = FAIL if overdue else NA
        detail = "service key live and still owned by the leaver: reassign or revoke it"
    elif ended is None:
        check = FAIL if overdue else NA
        detail = f"not removed yet ({hours_between(leaver.deactivated_at, now)} h after deactivation)"
    elif ended - leaver.deactivated_at > sla:
        check, detail = FAIL, f"removed {hours_between(leaver.deactivated_at, ended)} h after deactivation"
    else:
        check, detail = PASS, ""
    if leaver.event_seq is None:
        detail = "; ".join(filter(None, [detail, "deactivation has no audit event"]))
    return base | {
        "key_id": key.pk,
        "key_alias": key.alias,
        "kind": key.kind,
        "team": key.team.name,
        "key_status_now": key.status,
        "revoke_requested_at": iso(key.revoke_requested_at),
        "revoked_at": iso(key.revoked_at),
        "ended_at": iso(ended),
        "delay_hours": hours_between(leaver.deactivated_at, ended),
        "check_key_removed_in_time": check,
        "check_detail": detail,
    }


def leaver_rows(period: Period, team_ids: list[int] | None = None, *, now: datetime | None = None) -> Iterator[dict]:
    """Each leaver with each key they held when they left: when it was revoked and the delay."""
    from django.utils import timezone

    now = now or timezone.now()
    for batch in chunks(leavers(period), 500):
        keys: dict[int, list[VirtualKey]] = defaultdict(list)
        qs = VirtualKey.objects.filter(owner_id__in=[leaver.user.pk for leaver in batch]).select_related("team")
        if team_ids:
            qs = qs.filter(team_id__in=team_ids)
        for key in qs.order_by("pk"):
            keys[key.owner_id].append(key)
        for leaver in batch:
            held = [
                key
                for key in keys[leaver.user.pk]
                if key.created_at <= leaver.deactivated_at
                and not (key.revoke_requested_at and key.revoke_requested_at < leaver.deactivated_at)
                and not (key.status == VirtualKey.Status.EXPIRED and key.expires_at <= leaver.deactivated_at)
            ]
            if not held and not team_ids:
                yield _leaver_key_row(leaver, None, now)
            for key in held:
                yield _leaver_key_row(leaver, key, now)


# --- access reviews (CC6.3) ----------------------------------------------------------------------------


REVIEW_COLUMNS = (
    "review_id", "review_name", "opened_by", "opened_at", "due_at", "on_due", "escalated_at", "signed_off_by",
    "signed_off_at", "sign_off_note", "item_id", "snapshot_at", "key_id", "key_alias", "kind", "team", "owner",
    "owner_active", "key_status_at_snapshot", "models", "monthly_budget", "expires_at", "last_used_at",
    "last_used_day", "spend_90d", "decision", "rationale", "decided_by", "decided_at", "by_deadline", "changes",
    "revoke_requested_at", "revoked_at", "deleted_in_gateway_event_seq", "deleted_in_gateway_at",
    "check_rationale", "check_reviewer_not_owner", "check_revocation_done",
)  # fmt: skip


def reviews_closed_in(period: Period) -> QuerySet[AccessReview]:
    return AccessReview.objects.filter(
        status=AccessReview.Status.CLOSED, signed_off_at__gte=period.start_at, signed_off_at__lt=period.end_before
    )


def review_items(reviews: QuerySet[AccessReview], team_ids: list[int] | None = None) -> QuerySet[AccessReviewItem]:
    qs = AccessReviewItem.objects.filter(review__in=reviews)
    return qs.filter(team_id__in=team_ids) if team_ids else qs


def review_item_rows(items: QuerySet[AccessReviewItem]) -> Iterator[dict]:
    """Snapshot, decision and proof of revocation for each item (the campaign report)."""
    qs = items.select_related(
        "review__opened_by", "review__signed_off_by", "decision__decided_by", "key", "owner"
    ).order_by("review_id", "pk")
    for batch in chunks(qs.iterator(chunk_size=CHUNK), CHUNK):
        deleted: dict[str, tuple[int, datetime]] = {}
        for seq, at, target_id in (
            AuditEvent.objects.filter(
                action="key.deleted_in_gateway",
                target_type=KEY_TARGET,
                target_id__in=[str(item.key_id) for item in batch],
            )
            .order_by("seq")
            .values_list("seq", "created_at", "target_id")
        ):
            deleted.setdefault(target_id, (seq, at))
        for item in batch:
            yield review_item_row(item, deleted.get(str(item.key_id)))


def review_item_row(item: AccessReviewItem, deleted_event: tuple[int, datetime] | None) -> dict:
    review = item.review
    decision = getattr(item, "decision", None)
    key = item.key
    if decision is None:
        rationale_check = reviewer_check = FAIL
        revocation_check = NA
    else:
        rationale_check = PASS if decision.rationale.strip() else FAIL
        if decision.by_deadline:
            reviewer_check = PASS
        else:
            reviewer_check = FAIL if decision.decided_by_id in (item.owner_id, item.requested_by_id) else PASS
        if decision.decision == decision.Decision.REVOKE:
            gone = key.revoked_at is not None or key.status in (VirtualKey.Status.EXPIRED, VirtualKey.Status.REVOKED)
            revocation_check = PASS if gone else FAIL
        else:
            revocation_check = NA
    return {
        "review_id": review.pk,
        "review_name": review.name,
        "opened_by": review.opened_by.email,
        "opened_at": iso(review.opened_at),
        "due_at": iso(review.due_at),
        "on_due": review.on_due,
        "escalated_at": iso(review.escalated_at),
        "signed_off_by": _email(review.signed_off_by),
        "signed_off_at": iso(review.signed_off_at),
        "sign_off_note": review.sign_off_note,
        "item_id": item.pk,
        "snapshot_at": iso(item.snapshot_at),
        "key_id": item.key_id,
        "key_alias": item.key_alias,
        "kind": item.key_kind,
        "team": item.team_name,
        "owner": item.owner_email,
        "owner_active": item.owner_active,
        "key_status_at_snapshot": item.key_status,
        "models": list(item.allowed_models),
        "monthly_budget": money(item.max_budget),
        "expires_at": iso(item.expires_at),
        "last_used_at": iso(item.last_used_at),
        "last_used_day": iso(item.last_used_day),
        "spend_90d": money(item.spend_90d),
        "decision": decision.decision if decision else None,
        "rationale": decision.rationale if decision else None,
        "decided_by": (_email(decision.decided_by) or "due-date rule") if decision else None,
        "decided_at": iso(decision.decided_at) if decision else None,
        "by_deadline": decision.by_deadline if decision else None,
        "changes": decision.changes if decision else {},
        "revoke_requested_at": iso(key.revoke_requested_at),
        "revoked_at": iso(key.revoked_at),
        "deleted_in_gateway_event_seq": deleted_event[0] if deleted_event else None,
        "deleted_in_gateway_at": iso(deleted_event[1]) if deleted_event else None,
        "check_rationale": rationale_check,
        "check_reviewer_not_owner": reviewer_check,
        "check_revocation_done": revocation_check,
    }


# --- budgets (CC6.3, CC8.1) -----------------------------------------------------------------------------


INCREASE_COLUMNS = (
    "increase_id", "budget_id", "budget_scope", "team", "requested_by", "requested_at", "amount", "until",
    "justification", "status", "decided_by", "decided_at", "decision_note", "amount_before", "amount_after",
    "reverted_at", "check_decider_not_requester",
)  # fmt: skip


def increases_queryset(period: Period, team_ids: list[int] | None = None) -> QuerySet[BudgetIncreaseRequest]:
    qs = BudgetIncreaseRequest.objects.filter(_in("created_at", period) | _in("decided_at", period))
    return qs.filter(budget__team_id__in=team_ids) if team_ids else qs


def increase_rows(period: Period, team_ids: list[int] | None = None) -> Iterator[dict]:
    qs = (
        increases_queryset(period, team_ids)
        .select_related("budget__team", "budget__user", "budget__key", "requested_by", "decided_by")
        .order_by("pk")
    )
    for inc in qs.iterator(chunk_size=CHUNK):
        check = NA if inc.decided_by_id is None else (FAIL if inc.decided_by_id == inc.requested_by_id else PASS)
        yield {
            "increase_id": inc.pk,
            "budget_id": inc.budget_id,
            "budget_scope": inc.budget.scope_label,
            "team": inc.budget.team.name,
            "requested_by": inc.requested_by.email,
            "requested_at": iso(inc.created_at),
            "amount": money(inc.amount),
            "until": iso(inc.until),
            "justification": inc.justification,
            "status": inc.status,
            "decided_by": _email(inc.decided_by),
            "decided_at": iso(inc.decided_at),
            "decision_note": inc.decision_note,
            "amount_before": money(inc.amount_before),
            "amount_after": money(inc.amount_after),
            "reverted_at": iso(inc.reverted_at),
            "check_decider_not_requester": check,
        }


# --- audit events (CC7.2, CC8.1) ---------------------------------------------------------------------------

EVENT_COLUMNS = (
    "seq", "created_at", "actor", "action", "target_type", "target_id", "target_label", "team", "data", "ip",
    "user_agent", "request_id", "prev_hash", "hash",
)  # fmt: skip
_EVENT_FIELDS = (
    "seq", "created_at", "actor_label", "action", "target_type", "target_id", "target_label", "team_id", "data",
    "ip", "user_agent", "request_id", "prev_hash", "hash",
)  # fmt: skip

BUDGET_ACTIONS = ("budget.", "budget_increase.")
POLICY_AND_ROLE_ACTIONS = (
    "model_policy.", "data_classification.", "team.", "membership.", "user.created", "user.deactivated",
    "user.reactivated", "user.org_role_", "sso_mapping.", "scim_group.", "scim_token.", "api_token.created",
    "api_token.revoked", "admin.", "ingest_token.", "access_review.", "evidence.", "ledger.",
)  # fmt: skip


def events_in(period: Period, prefixes: tuple[str, ...] | None = None) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.filter(created_at__gte=period.start_at, created_at__lt=period.end_before)
    if prefixes:
        condition = Q()
        for prefix in prefixes:
            condition |= Q(action__startswith=prefix)
        qs = qs.filter(condition)
    return qs


def event_rows(qs: QuerySet[AuditEvent], teams: dict[int, str] | None = None) -> Iterator[dict]:
    teams = teams if teams is not None else team_names()
    for values in qs.order_by("seq").values_list(*_EVENT_FIELDS).iterator(chunk_size=CHUNK):
        row = dict(zip(EVENT_COLUMNS, values, strict=True))
        row["created_at"] = iso(row["created_at"])
        row["team"] = teams.get(row["team"]) if row["team"] else None
        yield row


# --- who may do what (CC6.1) -----------------------------------------------------------------------------

ROLE_COLUMNS = ("person", "person_active", "role", "scope", "team", "source", "granted_at", "may")
_MAY = {
    "admin": "teams, roles, model policy, gateway settings; decide anything; open and sign off access reviews",
    "finance": "decide budget increases above team limits; see all cost",
    "auditor": "read everything incl. the audit log; export evidence; never decide or change",
    TeamRole.APPROVER: "decide the team's key requests and budget increases within its limit; review its keys",
    TeamRole.MEMBER: "request keys; see, reveal once, rotate and revoke their own keys",
}


def role_rows(team_ids: list[int] | None = None) -> Iterator[dict]:
    """Who holds which role at the time of the export (the role matrix applied to people)."""
    grants = OrgRoleGrant.objects.select_related("user").order_by("role", "user__email")
    for grant in grants.iterator(chunk_size=CHUNK):
        yield {
            "person": grant.user.email,
            "person_active": grant.user.is_active,
            "role": grant.role,
            "scope": "org",
            "team": None,
            "source": grant.source,
            "granted_at": iso(grant.created_at),
            "may": _MAY.get(grant.role, ""),
        }
    memberships = Membership.objects.select_related("user", "team").order_by("team__name", "role", "user__email")
    if team_ids:
        memberships = memberships.filter(team_id__in=team_ids)
    for m in memberships.iterator(chunk_size=CHUNK):
        yield {
            "person": m.user.email,
            "person_active": m.user.is_active,
            "role": m.role,
            "scope": "team",
            "team": m.team.name,
            "source": m.source,
            "granted_at": iso(m.created_at),
            "may": _MAY.get(m.role, ""),
        }


def role_count(team_ids: list[int] | None = None) -> int:
    memberships = Membership.objects.filter(team_id__in=team_ids) if team_ids else Membership.objects.all()
    return OrgRoleGrant.objects.count() + memberships.count()


# --- spend (CC7.2) ---------------------------------------------------------------------------------------

SPEND_COLUMNS = ("team", "key_id", "key_alias", "token_hash", "requests", "cost", "gateway_spend", "unpriced", "source")


def spend_queryset(period: Period, team_ids: list[int] | None = None):
    qs = DailyRollup.objects.filter(day__gte=period.start, day__lte=period.end)
    if team_ids:
        qs = qs.filter(team_id__in=team_ids)
    return (
        qs.values("team_id", "key_id", "token_hash")
        .annotate(
            requests=Sum("requests"),
            cost=Sum("cost"),
            gateway_spend=Sum("gateway_spend"),
            unpriced=Sum("unpriced_count"),
        )
        .order_by("team_id", "key_id", "token_hash")
    )


def spend_rows(period: Period, team_ids: list[int] | None, source: str) -> Iterator[dict]:
    teams = team_names()
    for batch in chunks(spend_queryset(period, team_ids).iterator(chunk_size=CHUNK)):
        aliases = dict(
            VirtualKey.objects.filter(pk__in=[r["key_id"] for r in batch if r["key_id"]]).values_list("pk", "alias")
        )
        for r in batch:
            yield {
                "team": teams.get(r["team_id"]) if r["team_id"] else None,
                "key_id": r["key_id"],
                "key_alias": aliases.get(r["key_id"]),
                "token_hash": r["token_hash"] or None,
                "requests": r["requests"],
                "cost": money(r["cost"] or Decimal("0")),
                "gateway_spend": money(r["gateway_spend"] or Decimal("0")),
                "unpriced": r["unpriced"],
                "source": source,
            }


# --- the catalogue ---------------------------------------------------------------------------------------

REPORT_NAMES = (
    "key_inventory",
    "key_lifecycle",
    "samples",
    "leavers",
    "access_reviews",
    "budget_increases",
    "budget_changes",
    "policy_and_role_changes",
    "access_roles",
    "spend_by_key",
    "audit_log",
)


def in_report_order(row_counts: dict) -> list[tuple[str, int]]:
    """Row counts as the bundle lists its reports (a JSON column keeps its own key order)."""
    known = [(name, row_counts[name]) for name in REPORT_NAMES if name in row_counts]
    return known + sorted((name, rows) for name, rows in row_counts.items() if name not in REPORT_NAMES)


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    controls: tuple[str, ...]
    description: str
    query: str
    columns: tuple[str, ...]
    key_column: str
    count: Callable[[], int]
    rows: Callable[[], Iterator[dict]]
    team_filtered: bool = True


def evidence_reports(
    period: Period, team_ids: list[int] | None, *, sample_ids: list[int], spend_source: str
) -> list[ReportSpec]:
    p = f"[{iso(period.start_at)}, {iso(period.end_before)})"
    teams = " and team in the filter" if team_ids else ""
    closed = reviews_closed_in(period)
    return [
        ReportSpec(
            "key_inventory",
            "Key inventory at the end of the period",
            ("CC6.1",),
            "Every key that existed when the period ended (and was not gone before it began): owner, team, data "
            "class, who created and approved it, expiry, models, budget, limits, last use and status at period end. "
            "Models and budget are as at period end: a reduction made after it (an access-review decision, the only "
            "change made to a key's grants) is undone from its key.reduced audit event; rate limits never change.",
            f"keys.VirtualKey created_at < {iso(period.end_before)}, not revoked or expired before "
            f"{iso(period.start_at)}{teams}; ordered by id",
            INVENTORY_COLUMNS,
            "alias",
            lambda: inventory_queryset(period, team_ids).count(),
            lambda: inventory_rows(period, team_ids),
        ),
        ReportSpec(
            "key_lifecycle",
            "Keys requested, approved, rejected, created, rotated, revoked or expired in the period",
            ("CC6.2", "CC6.3"),
            "One row per key (and per request that produced no key) with an event in the period, its actors and "
            "times, and per key the checks 'approver is not the requester' and 'approved before created'.",
            f"keys whose request was made or decided, or which were created, provisioned, revoked or expired in {p}"
            f"{teams}; then requests made or decided in the period without a key",
            LIFECYCLE_COLUMNS,
            "key_alias",
            lambda: lifecycle_count(period, team_ids),
            lambda: lifecycle_rows(period, team_ids),
        ),
        ReportSpec(
            "samples",
            "Sample of key creations",
            ("CC6.2",),
            "The keys drawn at random from those created in the period (see manifest: seed and algorithm), each "
            "with its request, justification, decisions and provisioning events.",
            f"random.Random(seed).sample(ids of keys created in {p}{teams}, ascending, N)",
            SAMPLE_COLUMNS,
            "key_alias",
            lambda: len(sample_ids),
            lambda: sample_rows(sample_ids),
        ),
        ReportSpec(
            "leavers",
            "Leavers and the revocation of their keys",
            ("CC6.3",),
            "Every person deactivated in the period with each key they held: when it was revoked (the gateway "
            f"confirmed the deletion) and the delay. The check fails past {leaver_sla()} or while a key is live.",
            f"audit events user.deactivated in {p}, plus users whose deactivated_at is in the period; their keys "
            f"created before and still live at deactivation{teams}",
            LEAVER_COLUMNS,
            "person",
            lambda: sum(1 for _ in leavers(period)),
            lambda: leaver_rows(period, team_ids),
        ),
        ReportSpec(
            "access_reviews",
            "Access reviews signed off in the period",
            ("CC6.3",),
            "Every snapshot row of the campaigns signed off in the period: the key as it was at the opening, the "
            "decision, reviewer, time and rationale, proof of revocation (revoked_at and the key.deleted_in_gateway "
            "event) and the sign-off. Self-review is refused by the service; the check shows it held.",
            f"audit.AccessReview status=closed, signed_off_at in {p}; their items{teams}",
            REVIEW_COLUMNS,
            "key_alias",
            lambda: review_items(closed, team_ids).count(),
            lambda: review_item_rows(review_items(closed, team_ids)),
        ),
        ReportSpec(
            "budget_increases",
            "Budget-increase requests and decisions",
            ("CC6.3", "CC8.1"),
            "Every budget-increase request made or decided in the period, with its decider and the check "
            "'decider is not the requester'.",
            f"budgets.BudgetIncreaseRequest created_at or decided_at in {p}{teams}",
            INCREASE_COLUMNS,
            "increase_id",
            lambda: increases_queryset(period, team_ids).count(),
            lambda: increase_rows(period, team_ids),
        ),
        ReportSpec(
            "budget_changes",
            "Budget changes, alerts and blocks",
            ("CC7.2", "CC8.1"),
            "Audit events of budgets and budget increases in the period (created, changed, thresholds crossed, "
            "keys blocked and unblocked, increases requested, decided and reverted).",
            f"audit events with action starting {', '.join(BUDGET_ACTIONS)} in {p}",
            EVENT_COLUMNS,
            "seq",
            lambda: events_in(period, BUDGET_ACTIONS).count(),
            lambda: event_rows(events_in(period, BUDGET_ACTIONS)),
            team_filtered=False,
        ),
        ReportSpec(
            "policy_and_role_changes",
            "Model policy, team, membership and role changes",
            ("CC6.1", "CC8.1"),
            "Audit events of model policy, data classes, teams, memberships, org roles, SSO mappings, SCIM groups "
            "and tokens, API tokens, Django admin edits, ingest tokens, access reviews, evidence exports and ledger "
            "retention in the period.",
            f"audit events with action starting {', '.join(POLICY_AND_ROLE_ACTIONS)} in {p}",
            EVENT_COLUMNS,
            "seq",
            lambda: events_in(period, POLICY_AND_ROLE_ACTIONS).count(),
            lambda: event_rows(events_in(period, POLICY_AND_ROLE_ACTIONS)),
            team_filtered=False,
        ),
        ReportSpec(
            "access_roles",
            "Who holds which role (at the time of the export)",
            ("CC6.1",),
            "Org roles and team memberships as they are when the bundle is built, with what each role may do.",
            f"accounts.OrgRoleGrant, accounts.Membership{teams}",
            ROLE_COLUMNS,
            "person",
            lambda: role_count(team_ids),
            lambda: role_rows(team_ids),
        ),
        ReportSpec(
            "spend_by_key",
            "Spend per key in the period",
            ("CC7.2",),
            "Requests and ledger cost per team and key over the period, from the daily rollups.",
            f"budgets.DailyRollup day in [{period.start}, {period.end}]{teams}, summed per team and key",
            SPEND_COLUMNS,
            "key_alias",
            lambda: spend_queryset(period, team_ids).count(),
            lambda: spend_rows(period, team_ids, spend_source),
        ),
        ReportSpec(
            "audit_log",
            "Audit log extract",
            ("CC7.2", "CC8.1"),
            "Every audit event of the period with its hash and the hash it links to. audit_verify.txt holds the "
            "result of walking the whole chain when the bundle was built.",
            f"audit.AuditEvent created_at in {p}, ordered by seq",
            EVENT_COLUMNS,
            "seq",
            lambda: events_in(period).count(),
            lambda: event_rows(events_in(period)),
            team_filtered=False,
        ),
    ]
