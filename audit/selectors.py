from datetime import datetime, time

from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditEvent
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
