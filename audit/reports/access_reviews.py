"""Access reviews (CC6.3): each snapshot row of a campaign with its decision and proof of revocation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import QuerySet

from audit.models import AccessReview, AccessReviewItem, AuditEvent
from audit.period import Period
from audit.reports.common import CHUNK, FAIL, KEY_TARGET, NA, PASS, chunks, email_of, iso, money
from keys.models import VirtualKey

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
        "signed_off_by": email_of(review.signed_off_by),
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
        "decided_by": (email_of(decision.decided_by) or "due-date rule") if decision else None,
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
