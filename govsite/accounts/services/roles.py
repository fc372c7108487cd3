"""Org roles (admin, finance, auditor) granted to people and taken back, each with its audit event."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from govsite.accounts import permissions
from govsite.accounts.models import OrgRole, OrgRoleGrant, Source, User
from govsite.accounts.services.checks import _check_role, _require_active_person


def _org_role_grant(*, actor: User | None, user: User, role: str, source: str, actor_label: str = "") -> bool:
    _check_role(role, OrgRole, "role")
    _, created = OrgRoleGrant.objects.get_or_create(user=user, role=role, defaults={"source": source})
    if created:
        audit.record(
            actor=actor,
            actor_label=actor_label,
            action="user.org_role_granted",
            target=user,
            data={"role": role, "source": source},
        )
        user.forget_cached_roles()
    return created


def _org_role_revoke(*, actor: User | None, grant: OrgRoleGrant, reason: str = "", actor_label: str = "") -> None:
    data = {"role": grant.role, "source": grant.source}
    if reason:
        data["reason"] = reason
    audit.record(actor=actor, actor_label=actor_label, action="user.org_role_revoked", target=grant.user, data=data)
    grant.delete()
    grant.user.forget_cached_roles()


@transaction.atomic(durable=True)
def user_set_org_roles(*, actor: User, user: User, roles: Iterable[str]) -> None:
    permissions.require(permissions.can_manage_people(actor), "Only admins can change org roles.")
    wanted = set(roles)
    for role in wanted:
        _check_role(role, OrgRole, "org_roles")
    if user.pk == actor.pk and OrgRole.ADMIN not in wanted:
        raise ValidationError({"org_roles": "You cannot remove your own admin role."})
    if wanted:
        _require_active_person(user)
    for grant in OrgRoleGrant.objects.filter(user=user).exclude(role__in=wanted):
        _org_role_revoke(actor=actor, grant=grant)
    for role in sorted(wanted):
        _org_role_grant(actor=actor, user=user, role=role, source=Source.MANUAL)
