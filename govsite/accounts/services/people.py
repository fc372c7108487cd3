"""People: created by an admin, deactivated (their sessions and credentials end) and reactivated, each
with its audit event."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from govsite.accounts import permissions
from govsite.accounts.models import Source, User, UserSession
from govsite.accounts.services.roles import _org_role_grant


@transaction.atomic(durable=True)
def user_create(*, actor: User, email: str, full_name: str = "", org_roles: Iterable[str] = ()) -> User:
    permissions.require(permissions.can_manage_people(actor), "Only admins can add people.")
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "A person with this email already exists."})
    user = User(email=email, full_name=full_name)
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    audit.record(actor=actor, action="user.created", target=user, data={"email": email, "full_name": full_name})
    for role in org_roles:
        _org_role_grant(actor=actor, user=user, role=role, source=Source.MANUAL)
    return user


# What a deactivation must also end that apps above accounts hold: govsite.api registers the revocation of
# the person's API tokens (ApiConfig.ready). A registration, not an import, because accounts is the
# foundation and may not import the API (the layers' contract); and a revocation at deactivation, not a
# check at each call, because a revoked token is revoked for good: the token pages and the audit log say
# so, and a reactivation (by an admin or SCIM) brings back the person, not their old credentials.
# Each hook runs inside the deactivation's transaction and writes its own audit events.
DeactivationHook = Callable[..., None]  # hook(*, user, actor, actor_label)
_deactivation_hooks: list[DeactivationHook] = []


def register_deactivation_hook(hook: DeactivationHook) -> None:
    if hook not in _deactivation_hooks:
        _deactivation_hooks.append(hook)


def _deactivate(*, actor: User | None, user: User, reason: str, actor_label: str = "") -> bool:
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.is_active:
        return False
    user.is_active = False
    user.deactivated_at = timezone.now()
    user.save(update_fields=["is_active", "deactivated_at"])
    # Sessions end at once: the auth backends refuse inactive users on their very next request;
    # deleting the stored sessions as well leaves nothing to replay.
    _end_sessions(user)
    audit.record(actor=actor, actor_label=actor_label, action="user.deactivated", target=user, data={"reason": reason})
    for hook in _deactivation_hooks:
        hook(user=user, actor=actor, actor_label=actor_label)
    return True


def _end_sessions(user: User) -> None:
    keys = list(UserSession.objects.filter(user=user).values_list("session_key", flat=True))
    Session.objects.filter(session_key__in=keys).delete()
    UserSession.objects.filter(user=user).delete()


@transaction.atomic(durable=True)
def user_deactivate(*, actor: User, user: User, reason: str = "") -> User:
    permissions.require(permissions.can_manage_people(actor), "Only admins can deactivate people.")
    if user.pk == actor.pk:
        raise ValidationError({"user": "You cannot deactivate yourself."})
    _deactivate(actor=actor, user=user, reason=reason or "deactivated by an admin")
    user.refresh_from_db()
    return user


def _reactivate(*, actor: User | None, user: User, actor_label: str = "") -> bool:
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.is_active:
        return False
    user.is_active = True
    user.deactivated_at = None
    user.save(update_fields=["is_active", "deactivated_at"])
    audit.record(actor=actor, actor_label=actor_label, action="user.reactivated", target=user)
    return True


@transaction.atomic(durable=True)
def user_reactivate(*, actor: User, user: User) -> User:
    permissions.require(permissions.can_manage_people(actor), "Only admins can reactivate people.")
    _reactivate(actor=actor, user=user)
    user.refresh_from_db()
    return user
