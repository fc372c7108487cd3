"""Samples of key creations (CC6.2): the population, the seeded draw and one row per sampled key."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator

from django.db.models import Q, QuerySet

from audit.models import AuditEvent
from audit.period import Period
from audit.reports.common import (
    FAIL,
    KEY_TARGET,
    NA,
    PASS,
    REQUEST_TARGET,
    approvals_prefetch,
    approves,
    chunks,
    creation_checks,
    email_of,
    iso,
    money,
    within,
)
from keys.models import KeyKind, VirtualKey


def sample_population(period: Period, team_ids: list[int] | None = None) -> QuerySet:
    """The keys created in the period, by ascending id: the population a sample is drawn from."""
    qs = VirtualKey.objects.filter(within("created_at", period))
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
            .prefetch_related(approvals_prefetch(), "request__requested_models")
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
            checks = creation_checks(key, request, approves(approvals))
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
                        "approver": "team policy" if a.by_policy else email_of(a.approver),
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
