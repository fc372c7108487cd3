"""Reads for the API-token page, scoped through permissions."""

from django.db.models import QuerySet
from django.utils import timezone

from govsite.accounts import permissions
from govsite.api.models import ApiToken


def api_tokens_visible(*, user) -> QuerySet[ApiToken]:
    """The tokens the user may look up (their own; every token for admins): outside it, 404."""
    return ApiToken.objects.filter(permissions.api_token_scope(user)).select_related("user")


def my_api_tokens(*, user) -> QuerySet[ApiToken]:
    return (
        ApiToken.objects.filter(permissions.api_token_scope(user))
        .filter(user=user)
        .order_by("revoked_at", "-created_at")
    )


def others_live_api_tokens(*, user) -> QuerySet[ApiToken]:
    """Other people's tokens that still work (admins: to revoke a leaked one)."""
    return (
        ApiToken.objects.filter(permissions.api_token_scope(user))
        .exclude(user=user)
        .filter(revoked_at__isnull=True, expires_at__gt=timezone.now())
        .select_related("user")
        .order_by("user__email", "-created_at")
    )
