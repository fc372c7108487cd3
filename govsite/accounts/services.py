"""Every write to people, teams, memberships, roles, SSO mappings and SCIM provisioning, each with its audit event."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from govsite.accounts import permissions
from govsite.accounts.models import (
    Membership,
    OrgRole,
    OrgRoleGrant,
    ScimGroup,
    ScimToken,
    Source,
    SsoGroupMapping,
    Team,
    TeamRole,
    User,
)

log = logging.getLogger(__name__)

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


def _membership_set(
    *, actor: User | None, user: User, team: Team, role: str, source: str, actor_label: str = ""
) -> Membership | None:
    """Create or change one membership; returns it, or None if nothing changed."""
    membership = Membership.objects.select_for_update().filter(user=user, team=team).first()
    if membership is None:
        membership = Membership.objects.create(user=user, team=team, role=role, source=source)
        audit.record(
            actor=actor,
            actor_label=actor_label,
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
        actor_label=actor_label,
        action="membership.role_changed",
        target=membership,
        team=team,
        data={"user": user.email, "before": before, "after": role, "source": source},
    )
    return membership


def _membership_delete(*, actor: User | None, membership: Membership, reason: str = "", actor_label: str = "") -> None:
    data = {"user": membership.user.email, "role": membership.role, "source": membership.source}
    if reason:
        data["reason"] = reason
    audit.record(
        actor=actor,
        actor_label=actor_label,
        action="membership.removed",
        target=membership,
        team=membership.team,
        data=data,
    )
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
    return _group_grants_sync(user=user, groups=groups, source=Source.SSO, reason="no longer in the SSO groups claim")


def _group_grants_sync(
    *, user: User, groups: Iterable[str], source: str, reason: str, actor_label: str = "", grant: bool = True
) -> dict:
    """Make the user's memberships and org roles of one `source` (SSO or SCIM) match what `groups` map to.

    Grants of other sources are never touched, and a team the person is already in through another
    source keeps that membership. `grant=False` (a deactivated person) only removes.
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
    for team_id, (team, role) in want_teams.items() if grant else ():
        membership = existing.get(team_id)
        if membership is not None and membership.source != source:
            continue  # set by hand in govsite (or by the other channel): this one does not override it
        changed = _membership_set(actor=None, user=user, team=team, role=role, source=source, actor_label=actor_label)
        if changed is not None:
            changes["teams_added"].append(f"{team.slug}:{role}")
    for team_id, membership in existing.items():
        if membership.source == source and team_id not in want_teams:
            _membership_delete(actor=None, membership=membership, reason=reason, actor_label=actor_label)
            changes["teams_removed"].append(membership.team.slug)

    grants = {g.role: g for g in OrgRoleGrant.objects.select_for_update().filter(user=user)}
    for role in sorted(want_roles - set(grants)) if grant else ():
        _org_role_grant(actor=None, user=user, role=role, source=source, actor_label=actor_label)
        changes["roles_added"].append(role)
    for role, existing_grant in grants.items():
        if existing_grant.source == source and role not in want_roles:
            _org_role_revoke(actor=None, grant=existing_grant, reason=reason, actor_label=actor_label)
            changes["roles_removed"].append(role)
    user.forget_cached_roles()
    return changes


# --- SCIM provisioning ----------------------------------------------------------------------------
# The identity provider creates, updates and deactivates people and pushes groups; each write is
# audited as "scim:<token name>". A SCIM group's display name maps through SsoGroupMapping, like a
# name in the SSO groups claim, and what it grants has source "scim".

SCIM_TOKEN_PREFIX = "scim_"  # noqa: S105 - a prefix, not a secret
# last_used_at is a hint for admins ("is the identity provider still syncing?"), not a log.
SCIM_LAST_USED_RESOLUTION = timedelta(minutes=1)


class AlreadyExists(ValidationError):
    """The write would duplicate a person's email or a group's name (SCIM answers 409 uniqueness)."""


class ScimTokenRefused(Exception):
    """A bearer token that does not authenticate; `reason` is what the audit event records."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class ScimUserInput:
    """A person as the identity provider describes them (SCIM User: userName, name, active, externalId)."""

    email: str
    full_name: str = ""
    active: bool = True
    external_id: str = ""


def hash_scim_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic(durable=True)
def scim_token_create(*, actor: User | None, name: str) -> tuple[ScimToken, str]:
    """A new SCIM bearer token; the secret is returned once and never stored.

    `actor` None is an operator at the shell (`manage.py create_scim_token`): shell access is the permission.
    """
    if actor is not None:
        permissions.require(permissions.can_manage_people(actor), "Only admins can create SCIM tokens.")
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the token after the identity provider that uses it."})
    if len(name) > 100:
        raise ValidationError({"name": "At most 100 characters."})
    if ScimToken.objects.filter(name=name, revoked_at__isnull=True).exists():
        raise ValidationError({"name": "A live SCIM token already has this name; revoke it or choose another."})
    secret = SCIM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            token = ScimToken.objects.create(
                name=name, token_hash=hash_scim_token(secret), last4=secret[-4:], created_by=actor
            )
    except IntegrityError as exc:  # the same name made live by someone else a moment ago
        raise ValidationError(
            {"name": "A live SCIM token already has this name; revoke it or choose another."}
        ) from exc
    audit.record(
        actor=actor,
        actor_label="" if actor else "manage.py create_scim_token",
        action="scim_token.created",
        target=token,
        data={"name": name, "last4": token.last4},
    )
    return token, secret


@transaction.atomic(durable=True)
def scim_token_revoke(*, actor: User, token: ScimToken) -> ScimToken:
    permissions.require(permissions.can_manage_people(actor), "Only admins can revoke SCIM tokens.")
    token = ScimToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise ValidationError({"token": "This SCIM token is already revoked."})
    token.revoked_at, token.revoked_by = timezone.now(), actor
    token.save(update_fields=["revoked_at", "revoked_by"])
    audit.record(
        actor=actor, action="scim_token.revoked", target=token, data={"name": token.name, "last4": token.last4}
    )
    return token


def scim_token_authenticate(*, secret: str, method: str, path: str) -> ScimToken:
    """The live token this secret belongs to, or ScimTokenRefused.

    Using a revoked token is audited (it is a known credential); a secret that matches no token is only
    logged: anyone can send one, and the audit chain is not a place anonymous callers can write to.
    """
    token = ScimToken.objects.filter(token_hash=hash_scim_token(secret)).first() if secret else None
    if token is None:
        log.warning("SCIM call with an unknown token (%s %s)", method, path[:200])
        raise ScimTokenRefused("unknown", "Unknown SCIM bearer token.")
    if token.revoked_at is not None:
        with transaction.atomic():
            audit.record(
                actor_label=token.actor_label,
                action="scim_token.refused",
                target=token,
                data={"reason": "revoked", "method": method, "path": path[:200]},
            )
        raise ScimTokenRefused("revoked", "This SCIM token was revoked.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > SCIM_LAST_USED_RESOLUTION:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def _require_live_token(token: ScimToken) -> ScimToken:
    # Locked for the write: a revocation that commits first stops the write, one after waits for it.
    token = ScimToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise PermissionDenied("This SCIM token was revoked.")
    return token


def _scim_email(value: str) -> str:
    email = User.objects.normalize_email((value or "").strip()).lower()
    if not email:
        raise ValidationError({"userName": "userName (the person's email address) is required."})
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"userName": f"userName must be an email address, not {value!r}."}) from exc
    return email


def _scim_grants_sync(*, user: User, label: str) -> dict:
    groups = ScimGroup.objects.filter(members=user).values_list("display_name", flat=True)
    return _group_grants_sync(
        user=user,
        groups=list(groups),
        source=Source.SCIM,
        reason="no longer in a SCIM group that grants it",
        actor_label=label,
        grant=user.is_active,
    )


@transaction.atomic(durable=True)
def scim_user_create(*, token: ScimToken, data: ScimUserInput) -> User:
    """POST /Users: a new person (no password: they sign in through SSO)."""
    label = _require_live_token(token).actor_label
    email = _scim_email(data.email)
    if User.objects.filter(email__iexact=email).exists():
        raise AlreadyExists({"userName": f"A person with userName {email} already exists."})
    user = User(email=email, full_name=data.full_name.strip()[:200], scim_external_id=data.external_id[:255])
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # created by someone else between the check and the save
        raise AlreadyExists({"userName": f"A person with userName {email} already exists."}) from exc
    audit.record(
        actor_label=label,
        action="user.created",
        target=user,
        data={"email": email, "full_name": user.full_name, "external_id": user.scim_external_id, "via": "scim"},
    )
    if not data.active:
        _deactivate(actor=None, actor_label=label, user=user, reason="provisioned as inactive through SCIM")
    user.refresh_from_db()
    return user


@transaction.atomic(durable=True)
def scim_user_update(*, token: ScimToken, user: User, data: ScimUserInput) -> User:
    """PUT (and PATCH, once applied) /Users/<id>: the person becomes exactly `data`.

    `active: false` deactivates (ends sessions; the next leaver sweep revokes their keys), `active: true`
    reactivates; a deactivated person's SCIM groups grant nothing until then.
    """
    label = _require_live_token(token).actor_label
    email = _scim_email(data.email)
    user = User.objects.select_for_update().get(pk=user.pk)
    after = {"email": email, "full_name": data.full_name.strip()[:200], "scim_external_id": data.external_id[:255]}
    changes = {f: {"before": getattr(user, f), "after": v} for f, v in after.items() if getattr(user, f) != v}
    if "email" in changes and User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
        raise AlreadyExists({"userName": f"Another person already has userName {email}."})
    if changes:
        for field, value in after.items():
            setattr(user, field, value)
        user.full_clean(exclude=["password"])
        try:
            with transaction.atomic():
                user.save(update_fields=list(changes))
        except IntegrityError as exc:
            raise AlreadyExists({"userName": f"Another person already has userName {email}."}) from exc
        event: dict = {"changes": changes, "via": "scim"}
        if "email" in changes:
            # allauth signs people in by their addresses too: the old one must not lead here any more
            # (a recycled address would otherwise open this person's account).
            stale = EmailAddress.objects.filter(user=user).exclude(email__iexact=email)
            event["sign_in_emails_removed"] = sorted(stale.values_list("email", flat=True))
            stale.delete()
        audit.record(actor_label=label, action="user.updated", target=user, data=event)
    if not data.active:
        _deactivate(actor=None, actor_label=label, user=user, reason="deactivated through SCIM (active: false)")
    elif _reactivate(actor=None, actor_label=label, user=user):
        user.refresh_from_db()
        _scim_grants_sync(user=user, label=label)
    user.refresh_from_db()
    return user


@transaction.atomic(durable=True)
def scim_user_deactivate(*, token: ScimToken, user: User) -> User:
    """DELETE /Users/<id>: people are never deleted (the audit trail and the leaver report need them);
    they are deactivated, exactly as an admin would."""
    label = _require_live_token(token).actor_label
    _deactivate(actor=None, actor_label=label, user=user, reason="deleted through SCIM")
    user.refresh_from_db()
    return user


def _scim_members(member_ids: Iterable[int]) -> list[User]:
    wanted = set(member_ids)
    users = list(User.objects.filter(pk__in=wanted))
    missing = sorted(wanted - {u.pk for u in users})
    if missing:
        raise ValidationError({"members": f"No person with id {', '.join(map(str, missing))}."})
    return users


def _scim_group_name(display_name: str, *, exclude_pk: int | None = None) -> str:
    name = (display_name or "").strip()
    if not name:
        raise ValidationError({"displayName": "displayName is required."})
    if len(name) > 200:
        raise ValidationError({"displayName": "displayName is at most 200 characters."})
    if ScimGroup.objects.filter(display_name=name).exclude(pk=exclude_pk).exists():
        raise AlreadyExists({"displayName": f"A group named {name!r} already exists."})
    return name


def _scim_group_save(group: ScimGroup) -> None:
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError as exc:
        raise AlreadyExists({"displayName": f"A group named {group.display_name!r} already exists."}) from exc


@transaction.atomic(durable=True)
def scim_group_create(
    *, token: ScimToken, display_name: str, member_ids: Iterable[int] = (), external_id: str = ""
) -> ScimGroup:
    """POST /Groups: the members get what the group's name maps to (source "scim")."""
    label = _require_live_token(token).actor_label
    name = _scim_group_name(display_name)
    members = _scim_members(member_ids)
    group = ScimGroup(display_name=name, external_id=external_id[:255])
    _scim_group_save(group)
    group.members.set(members)
    audit.record(
        actor_label=label,
        action="scim_group.created",
        target=group,
        data={"display_name": name, "external_id": group.external_id, "members": sorted(u.email for u in members)},
    )
    for user in members:
        _scim_grants_sync(user=user, label=label)
    return group


@transaction.atomic(durable=True)
def scim_group_sync(
    *, token: ScimToken, group: ScimGroup, display_name: str, member_ids: Iterable[int], external_id: str
) -> ScimGroup:
    """PUT (and PATCH, once applied) /Groups/<id>: the group becomes exactly this name and these members;
    everyone whose groups changed has their SCIM grants recomputed."""
    label = _require_live_token(token).actor_label
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    name = _scim_group_name(display_name, exclude_pk=group.pk)
    members = {u.pk: u for u in _scim_members(member_ids)}
    current = {u.pk: u for u in group.members.all()}
    added = [members[pk] for pk in members.keys() - current.keys()]
    removed = [current[pk] for pk in current.keys() - members.keys()]
    changes: dict = {}
    if name != group.display_name:
        changes["display_name"] = {"before": group.display_name, "after": name}
    if external_id[:255] != group.external_id:
        changes["external_id"] = {"before": group.external_id, "after": external_id[:255]}
    if added:
        changes["members_added"] = sorted(u.email for u in added)
    if removed:
        changes["members_removed"] = sorted(u.email for u in removed)
    if not changes:
        return group
    group.display_name, group.external_id, group.updated_at = name, external_id[:255], timezone.now()
    _scim_group_save(group)
    if added:
        group.members.add(*added)
    if removed:
        group.members.remove(*removed)
    audit.record(actor_label=label, action="scim_group.updated", target=group, data={"changes": changes})
    # A new name maps to other teams and roles: everyone in the group is recomputed.
    affected = {**current, **members} if "display_name" in changes else {u.pk: u for u in added + removed}
    for user in sorted(affected.values(), key=lambda u: u.pk):
        _scim_grants_sync(user=user, label=label)
    return group


@transaction.atomic(durable=True)
def scim_group_delete(*, token: ScimToken, group: ScimGroup) -> None:
    """DELETE /Groups/<id>: the group goes, and with it what it granted its members."""
    label = _require_live_token(token).actor_label
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    members = list(group.members.order_by("pk"))
    audit.record(
        actor_label=label,
        action="scim_group.deleted",
        target=group,
        data={"display_name": group.display_name, "members": sorted(u.email for u in members)},
    )
    group.delete()
    for user in members:
        _scim_grants_sync(user=user, label=label)
