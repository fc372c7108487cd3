"""Every write to people, teams, memberships, roles and SSO mappings, each with its audit event."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from govsite.accounts import permissions
from govsite.accounts.models import (
    Membership,
    OrgRole,
    OrgRoleGrant,
    Source,
    SsoGroupMapping,
    Team,
    TeamRole,
    User,
)

TEAM_FIELDS = ("name", "slug", "description", "cost_centre", "slack_webhook_url")


def _team_snapshot(team: Team) -> dict:
    return {field: getattr(team, field) for field in TEAM_FIELDS}


# --- teams ------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def team_create(
    *, actor: User, name: str, slug: str, description: str = "", cost_centre: str = "", slack_webhook_url: str = ""
) -> Team:
    permissions.require(permissions.can_manage_teams(actor), "Only admins can create teams.")
    team = Team(
        name=name, slug=slug, description=description, cost_centre=cost_centre, slack_webhook_url=slack_webhook_url
    )
    team.full_clean()
    team.save()
    audit.record(actor=actor, action="team.created", target=team, team=team, data={"after": _team_snapshot(team)})
    return team


@transaction.atomic(durable=True)
def team_update(*, actor: User, team: Team, **changes) -> Team:
    permissions.require(permissions.can_manage_teams(actor), "Only admins can edit teams.")
    team = Team.objects.select_for_update().get(pk=team.pk)
    before = _team_snapshot(team)
    unknown = set(changes) - set(TEAM_FIELDS)
    if unknown:
        raise ValueError(f"Unknown team fields: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(team, field, value)
    team.full_clean()
    after = _team_snapshot(team)
    if after == before:
        return team
    team.save()
    changed = {k: {"before": before[k], "after": after[k]} for k in TEAM_FIELDS if before[k] != after[k]}
    audit.record(actor=actor, action="team.updated", target=team, team=team, data={"changes": changed})
    return team


# --- memberships ------------------------------------------------------------------------------


def _require_active_person(user: User) -> None:
    if not user.is_active:
        raise ValidationError({"user": "This person is deactivated; reactivate them first."})


def _check_role(role: str, choices, field: str) -> None:
    if role not in choices.values:
        raise ValidationError({field: f"Unknown role {role!r}."})


def _membership_set(*, actor: User | None, user: User, team: Team, role: str, source: str) -> Membership | None:
    """Create or change one membership; returns it, or None if nothing changed."""
    membership = Membership.objects.select_for_update().filter(user=user, team=team).first()
    if membership is None:
        membership = Membership.objects.create(user=user, team=team, role=role, source=source)
        audit.record(
            actor=actor,
            action="membership.added",
            target=membership,
            team=team,
            data={"user": user.email, "role": role, "source": source},
        )
        return membership
    if membership.role == role:
        return None
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(
        actor=actor,
        action="membership.role_changed",
        target=membership,
        team=team,
        data={"user": user.email, "before": before, "after": role, "source": source},
    )
    return membership


def _membership_delete(*, actor: User | None, membership: Membership, reason: str = "") -> None:
    data = {"user": membership.user.email, "role": membership.role, "source": membership.source}
    if reason:
        data["reason"] = reason
    audit.record(actor=actor, action="membership.removed", target=membership, team=membership.team, data=data)
    membership.delete()


@transaction.atomic(durable=True)
def membership_add(*, actor: User, team: Team, user: User, role: str = TeamRole.MEMBER) -> Membership:
    permissions.require(permissions.can_manage_teams(actor), "Only admins can change memberships.")
    _check_role(role, TeamRole, "role")
    _require_active_person(user)
    if Membership.objects.filter(user=user, team=team).exists():
        raise ValidationError({"user": f"{user.email} is already in {team.name}."})
    return _membership_set(actor=actor, user=user, team=team, role=role, source=Source.MANUAL)


@transaction.atomic(durable=True)
def membership_change_role(*, actor: User, membership: Membership, role: str) -> Membership:
    permissions.require(permissions.can_manage_teams(actor), "Only admins can change memberships.")
    _check_role(role, TeamRole, "role")
    _require_active_person(membership.user)
    _membership_set(actor=actor, user=membership.user, team=membership.team, role=role, source=membership.source)
    membership.refresh_from_db()
    return membership


@transaction.atomic(durable=True)
def membership_remove(*, actor: User, membership: Membership) -> None:
    permissions.require(permissions.can_manage_teams(actor), "Only admins can change memberships.")
    _membership_delete(actor=actor, membership=membership)


# --- people and org roles ---------------------------------------------------------------------


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


def _org_role_grant(*, actor: User | None, user: User, role: str, source: str) -> bool:
    _check_role(role, OrgRole, "role")
    _, created = OrgRoleGrant.objects.get_or_create(user=user, role=role, defaults={"source": source})
    if created:
        audit.record(actor=actor, action="user.org_role_granted", target=user, data={"role": role, "source": source})
        user.forget_cached_roles()
    return created


def _org_role_revoke(*, actor: User | None, grant: OrgRoleGrant, reason: str = "") -> None:
    data = {"role": grant.role, "source": grant.source}
    if reason:
        data["reason"] = reason
    audit.record(actor=actor, action="user.org_role_revoked", target=grant.user, data=data)
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


def _deactivate(*, actor: User | None, user: User, reason: str) -> bool:
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.is_active:
        return False
    user.is_active = False
    user.deactivated_at = timezone.now()
    user.save(update_fields=["is_active", "deactivated_at"])
    # Sessions end at once: the auth backends refuse inactive users on their very next request;
    # deleting the stored sessions as well leaves nothing to replay.
    _end_sessions(user)
    audit.record(actor=actor, action="user.deactivated", target=user, data={"reason": reason})
    return True


def _end_sessions(user: User) -> None:
    from django.contrib.sessions.models import Session

    from govsite.accounts.models import UserSession

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


@transaction.atomic(durable=True)
def user_reactivate(*, actor: User, user: User) -> User:
    permissions.require(permissions.can_manage_people(actor), "Only admins can reactivate people.")
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.is_active:
        return user
    user.is_active = True
    user.deactivated_at = None
    user.save(update_fields=["is_active", "deactivated_at"])
    audit.record(actor=actor, action="user.reactivated", target=user)
    return user


# --- SSO --------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def sso_mapping_create(
    *, actor: User, group: str, team: Team | None = None, team_role: str = "", org_role: str = ""
) -> SsoGroupMapping:
    permissions.require(permissions.can_manage_people(actor), "Only admins can edit SSO mappings.")
    group = group.strip()
    if not group:
        raise ValidationError({"group": "Name the SSO group."})
    if team is not None and org_role or team is None and not org_role:
        raise ValidationError({"team": "Map the group either to a team (with a role) or to an org role."})
    if team is not None:
        _check_role(team_role or "", TeamRole, "team_role")
    else:
        _check_role(org_role, OrgRole, "org_role")
    mapping = SsoGroupMapping(group=group, team=team, team_role=team_role if team else "", org_role=org_role)
    try:
        with transaction.atomic():
            mapping.save()
    except IntegrityError as exc:
        raise ValidationError({"group": "This group already has that mapping."}) from exc
    audit.record(
        actor=actor,
        action="sso_mapping.created",
        target=mapping,
        team=team,
        data={
            "group": group,
            "team": team.slug if team else None,
            "team_role": mapping.team_role,
            "org_role": org_role,
        },
    )
    return mapping


@transaction.atomic(durable=True)
def sso_mapping_delete(*, actor: User, mapping: SsoGroupMapping) -> None:
    permissions.require(permissions.can_manage_people(actor), "Only admins can edit SSO mappings.")
    audit.record(
        actor=actor,
        action="sso_mapping.deleted",
        target=mapping,
        team=mapping.team,
        data={
            "group": mapping.group,
            "team": mapping.team.slug if mapping.team else None,
            "team_role": mapping.team_role,
            "org_role": mapping.org_role,
        },
    )
    mapping.delete()


_ROLE_RANK = {TeamRole.MEMBER: 0, TeamRole.APPROVER: 1}


@transaction.atomic
def sso_sync_groups(*, user: User, groups: Iterable[str]) -> dict:
    """Make the user's SSO-sourced memberships and org roles match the groups claim.

    Memberships and roles granted by hand in govsite are left alone; those that came from SSO
    and are no longer in the claim are removed. Returns what changed, for the login event.
    """
    groups = {str(g) for g in groups}
    mappings = list(SsoGroupMapping.objects.filter(group__in=groups).select_related("team"))
    want_teams: dict[int, tuple[Team, str]] = {}
    want_roles: set[str] = set()
    for mapping in mappings:
        if mapping.team_id:
            current = want_teams.get(mapping.team_id)
            if current is None or _ROLE_RANK[mapping.team_role] > _ROLE_RANK[current[1]]:
                want_teams[mapping.team_id] = (mapping.team, mapping.team_role)
        else:
            want_roles.add(mapping.org_role)

    changes = {"teams_added": [], "teams_removed": [], "roles_added": [], "roles_removed": []}
    existing = {m.team_id: m for m in Membership.objects.select_for_update().filter(user=user).select_related("team")}
    for team_id, (team, role) in want_teams.items():
        membership = existing.get(team_id)
        if membership is not None and membership.source != Source.SSO:
            continue  # set by hand in govsite: SSO does not override it
        if _membership_set(actor=None, user=user, team=team, role=role, source=Source.SSO) is not None:
            changes["teams_added"].append(f"{team.slug}:{role}")
    for team_id, membership in existing.items():
        if membership.source == Source.SSO and team_id not in want_teams:
            _membership_delete(actor=None, membership=membership, reason="no longer in the SSO groups claim")
            changes["teams_removed"].append(membership.team.slug)

    grants = {g.role: g for g in OrgRoleGrant.objects.select_for_update().filter(user=user)}
    for role in sorted(want_roles - set(grants)):
        _org_role_grant(actor=None, user=user, role=role, source=Source.SSO)
        changes["roles_added"].append(role)
    for role, grant in grants.items():
        if grant.source == Source.SSO and role not in want_roles:
            _org_role_revoke(actor=None, grant=grant, reason="no longer in the SSO groups claim")
            changes["roles_removed"].append(role)
    user.forget_cached_roles()
    return changes
