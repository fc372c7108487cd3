"""What every evidence report shares: chunked reading, JSON-native values, the PASS/FAIL/N/A checks on a
key's creation and the approvals read a chunk at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

from django.db.models import Prefetch, Q

from audit.period import Period
from govsite.accounts.models import Team
from keys.models import Approval, KeyRequest, VirtualKey

CHUNK = 2000
PASS, FAIL, NA = "PASS", "FAIL", "N/A"
KEY_TARGET = "keys.virtualkey"
REQUEST_TARGET = "keys.keyrequest"
USER_TARGET = "accounts.user"


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


def email_of(user) -> str | None:
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


def approval_text(a: Approval) -> str:
    who = "team policy" if a.by_policy else (a.approver.email if a.approver else "?")
    admin = " (admin)" if a.as_admin else ""
    return f"{a.decision} by {who}{admin} at {iso(a.created_at)}"


def approvals_prefetch(prefix: str = "request__") -> Prefetch:
    return Prefetch(f"{prefix}approvals", queryset=Approval.objects.select_related("approver").order_by("created_at"))


def approves(approvals: list[Approval]) -> list[Approval]:
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


def with_approvals(rows: Iterable, request_id: Callable) -> Iterator[tuple]:
    """(row, its request's approvals) for rows read a chunk at a time."""
    for batch in chunks(rows):
        approvals = _approvals_by_request([request_id(row) for row in batch if request_id(row)])
        for row in batch:
            yield row, approvals.get(request_id(row), [])


def within(field: str, period: Period) -> Q:
    return Q(**{f"{field}__gte": period.start_at, f"{field}__lt": period.end_before})
