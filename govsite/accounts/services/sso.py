"""SSO group mappings, and what a groups claim (or a SCIM group) grants through them."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

import audit
from govsite.accounts import permissions
from govsite.accounts.models import Membership, OrgRole, OrgRoleGrant, Source, SsoGroupMapping, Team, TeamRole, User
from govsite.accounts.services.checks import _check_role
from govsite.accounts.services.roles import _org_role_grant, _org_role_revoke
from govsite.accounts.services.teams import _membership_delete, _membership_set


@transaction.atomic(durable=True)
def sso_mapping_create(
    *, actor: User, group: str, team: Team | None = None, team_role: str = "", org_role: str = ""
) -> SsoGroupMapping:
    permissions.require(permissions.can_manage_people(actor), "Only admins can edit SSO mappings.")
    group = group.strip()
    if not group:
        raise ValidationError({"group": "Name the SSO group."})
    if team is not None and org_role:
        raise ValidationError({"org_role": "Choose a team with a role, or an org role, not both."})
    if team is not None and not team_role:
        raise ValidationError({"team_role": "Choose the role this group gives in the team."})
    if team is None and team_role:
        raise ValidationError({"team": "A team role needs a team."})
    if team is None and not org_role:
        raise ValidationError({"team": "Choose a team (with a role) or an org role."})
    if team is not None:
        _check_role(team_role, TeamRole, "team_role")
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
