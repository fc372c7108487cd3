from datetime import datetime, time

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from audit.models import AccessReview, AccessReviewItem, AuditEvent, EvidenceExport, EvidenceSample
from govsite.accounts import permissions


def audit_event_list(
    *, user, actor: str = "", action: str = "", team_id: int | None = None, date_from=None, date_to=None
) -> QuerySet[AuditEvent]:
    if not permissions.can_view_audit_log(user):
        return AuditEvent.objects.none()
    qs = AuditEvent.objects.all()
    if actor:
        qs = qs.filter(actor_label__icontains=actor)
    if action:
        qs = qs.filter(action__startswith=action)
    if team_id:
        qs = qs.filter(team_id=team_id)
    if date_from:
        qs = qs.filter(created_at__gte=timezone.make_aware(datetime.combine(date_from, time.min)))
    if date_to:
        qs = qs.filter(created_at__lt=timezone.make_aware(datetime.combine(date_to, time.max)))
    return qs.order_by("-seq")


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())


# --- the auditor workspace -------------------------------------------------------------------------------


def evidence_exports(*, user):
    if not permissions.can_export_evidence(user):
        return EvidenceExport.objects.none()
    return EvidenceExport.objects.select_related("requested_by").order_by("-created_at")


def evidence_samples(*, user):
    if not permissions.can_draw_sample(user):
        return EvidenceSample.objects.none()
    return EvidenceSample.objects.select_related("drawn_by").order_by("-created_at")


def access_reviews(*, user):
    if not permissions.can_view_access_reviews(user):
        return AccessReview.objects.none()
    return (
        AccessReview.objects.select_related("opened_by", "signed_off_by")
        .annotate(decided=Count("items", filter=Q(items__decision__isnull=False)))
        .order_by("-opened_at")
    )


def access_review_items(*, review):
    return review.items.select_related("decision__decided_by", "key").order_by("team_name", "owner_email", "key_alias")


def access_review_outcome(*, review) -> dict:
    from django.db.models import Count

    counts = dict(
        review.items.values_list("decision__decision").annotate(n=Count("pk")).values_list("decision__decision", "n")
    )
    return {
        "keep": counts.get("keep", 0),
        "reduce": counts.get("reduce", 0),
        "revoke": counts.get("revoke", 0),
        "undecided": counts.get(None, 0),
    }


def access_review_queue(*, user):
    return (
        AccessReviewItem.objects.filter(permissions.access_review_item_queue_scope(user))
        .select_related("review", "key")
        .order_by("review__due_at", "team_name", "owner_email", "key_alias")
    )
