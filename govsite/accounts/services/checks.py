"""Checks several account services share: a role exists, a person is active."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from govsite.accounts.models import User


def _require_active_person(user: User) -> None:
    if not user.is_active:
        raise ValidationError({"user": f"{user.email} is deactivated; reactivate them first."})


def _check_role(role: str, choices, field: str) -> None:
    if role not in choices.values:
        raise ValidationError({field: f"Unknown role {role!r}."})
