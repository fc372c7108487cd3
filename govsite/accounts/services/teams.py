"""Teams and the memberships of people in them, each change with its audit event."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from govsite.accounts import permissions
from govsite.accounts.models import Membership, Source, Team, TeamRole, User
from govsite.accounts.services.checks import _check_role, _require_active_person
from govsite.accounts.slack import webhook_hint

TEAM_FIELDS = ("name", "slug", "description", "cost_centre", "slack_webhook_url")


def _team_snapshot(team: Team) -> dict:
    # The Slack webhook URL lets whoever holds it post into the channel: the audit trail keeps its hint only.
    snapshot = {field: getattr(team, field) for field in TEAM_FIELDS}
    snapshot["slack_webhook_url"] = webhook_hint(team.slack_webhook_url)
    return snapshot


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
    original_webhook = team.slack_webhook_url
    unknown = set(changes) - set(TEAM_FIELDS)
    if unknown:
        raise ValueError(f"Unknown team fields: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(team, field, value)
    team.full_clean()
    after = _team_snapshot(team)
    webhook_changed = "slack_webhook_url" in changes and changes["slack_webhook_url"] != original_webhook
    if after == before and not webhook_changed:
        return team
    team.save()
    changed = {k: {"before": before[k], "after": after[k]} for k in TEAM_FIELDS if before[k] != after[k]}
    if webhook_changed:
        # Two URLs may share their hint: a change is recorded all the same.
        changed["slack_webhook_url"] = {"before": before["slack_webhook_url"], "after": after["slack_webhook_url"]}
    audit.record(actor=actor, action="team.updated", target=team, team=team, data={"changes": changed})
    return team


# What joining a team sets off in apps above accounts: keys registers the rollouts that include people who
# join later (KeysConfig.ready). A registration, not an import, for the reason the deactivation hooks are
# one (accounts is the foundation). Every way in — an admin, an SSO login's groups, a SCIM group — comes
# through `_membership_set`; each hook runs inside its transaction and writes its own audit events.
MembershipHook = Callable[..., None]  # hook(*, membership, actor, actor_label)
_membership_added_hooks: list[MembershipHook] = []


def register_membership_added_hook(hook: MembershipHook) -> None:
    if hook not in _membership_added_hooks:
        _membership_added_hooks.append(hook)


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
        for hook in _membership_added_hooks:
            hook(membership=membership, actor=actor, actor_label=actor_label)
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
