"""Key rollouts: keys for a whole team (or a chosen list of its people) in one decision.

An approver of the team, or an admin, asks once: one policy (models, data class, budget per key, expiry)
and one justification. The rollout is decided like a key request — by another approver of the team or an
admin, never by the person who asked or someone it gives a key to; a restricted model needs an admin's
approval too. The decision makes, for each person, an approved `KeyRequest` (requested by the rollout's
requester, approved by the rollout's approvers: the evidence's "approver ≠ requester" holds per key) and
its key, each with its own audit events; each person reveals their own key once.

The gateway work is shared: one `rollout.sync` command makes the team and every person's gateway user,
and when it is done each key gets its own `key.generate` command (keys.services.commands), so any number
of workers take them in parallel, each retried on its own until the gateway answers.

People who join the team later (an admin, an SSO login's groups, a SCIM group: accounts' membership hook)
get a key too, until the rollout's end date, when the rollout says so. Revoking the rollout revokes every
key it made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from govsite.accounts import permissions
from govsite.accounts.models import Membership, Team, User
from govsite.errors import InvalidTransition
from keys import notifications
from keys.models import (
    Approval,
    DataClassification,
    GatewayCommand,
    KeyKind,
    KeyRequest,
    KeyRollout,
    KeyRolloutApproval,
    KeyRolloutMember,
    ModelPolicy,
    VirtualKey,
)
from keys.services.commands import gateway_command_issue
from keys.services.lifecycle import key_withdraw, keys_create_first
from keys.services.requests import KeyRequestInput, key_policy_errors

MAX_ROLLOUT_PEOPLE = 5000


@dataclass
class RolloutInput:
    team: Team
    purpose: str
    data_classification: DataClassification
    models: list[ModelPolicy]
    monthly_budget: Decimal
    expiry_days: int
    whole_team: bool = True
    people: list[User] = field(default_factory=list)  # the chosen list, when not the whole team
    include_joiners: bool = False
    ends_on: date | None = None


def _team_people(team: Team):
    return User.objects.filter(is_active=True, memberships__team=team).distinct().order_by("email")


def rollout_validate(*, requester: User, data: RolloutInput) -> list[User]:
    """Every rule a rollout must meet, as field errors; returns the people it gives a key to."""
    errors: dict[str, str] = {}
    if not permissions.can_request_rollout(requester, data.team):
        errors["team"] = "Only the team's approvers or an admin can ask for a rollout to it."
    policy = KeyRequestInput(
        team=data.team,
        kind=KeyKind.PERSONAL,
        purpose=data.purpose,
        data_classification=data.data_classification,
        models=data.models,
        monthly_budget=data.monthly_budget,
        expiry_days=data.expiry_days,
    )
    errors.update(key_policy_errors(policy))
    if data.whole_team:
        people = list(_team_people(data.team))
        if not people:
            errors["team"] = errors.get("team") or f"{data.team.name} has nobody in it yet."
    else:
        people = sorted({p.pk: p for p in data.people}.values(), key=lambda p: p.email)
        outsiders = [p.email for p in people if not p.is_active or not permissions.is_member_of(p, data.team)]
        if not people:
            errors["people"] = "Choose at least one person, or roll out to the whole team."
        elif outsiders:
            errors["people"] = f"Not active members of {data.team.name}: {', '.join(outsiders)}."
        if data.include_joiners:
            errors["include_joiners"] = "Only a rollout to the whole team can include people who join later."
    if len(people) > MAX_ROLLOUT_PEOPLE:
        errors["people"] = f"A rollout gives keys to at most {MAX_ROLLOUT_PEOPLE} people."
    if data.include_joiners:
        today = timezone.now().date()
        if data.ends_on is None:
            errors["ends_on"] = "Say until when people who join the team get a key."
        elif data.ends_on <= today:
            errors["ends_on"] = "The end date must be in the future."
    elif data.ends_on is not None and data.whole_team:
        errors["ends_on"] = "An end date is for including people who join later; tick that, or leave it empty."
    if errors:
        raise ValidationError(errors)
    return people


@transaction.atomic(durable=True)
def rollout_create(*, requester: User, data: RolloutInput) -> KeyRollout:
    people = rollout_validate(requester=requester, data=data)
    rollout = KeyRollout.objects.create(
        requested_by=requester,
        team=data.team,
        whole_team=data.whole_team,
        include_joiners=data.include_joiners,
        ends_on=data.ends_on if data.include_joiners else None,
        purpose=data.purpose.strip(),
        data_classification=data.data_classification,
        monthly_budget=data.monthly_budget,
        expiry_days=data.expiry_days,
        needs_admin_approval=any(m.is_restricted for m in data.models),
    )
    rollout.requested_models.set(data.models)
    KeyRolloutMember.objects.bulk_create([KeyRolloutMember(rollout=rollout, user=p) for p in people])
    audit.record(
        actor=requester,
        action="key_rollout.created",
        target=rollout,
        team=data.team,
        data={
            "whole_team": data.whole_team,
            "people": [p.email for p in people],
            "include_joiners": data.include_joiners,
            "ends_on": rollout.ends_on.isoformat() if rollout.ends_on else None,
            "models": sorted(m.name for m in data.models),
            "classification": data.data_classification.key,
            "monthly_budget": str(data.monthly_budget),
            "expiry_days": data.expiry_days,
        },
    )
    notifications.rollout_waiting(rollout, people=len(people))
    return rollout


def _lock(rollout: KeyRollout) -> KeyRollout:
    return KeyRollout.objects.select_for_update(of=("self",)).select_related("team").get(pk=rollout.pk)


@transaction.atomic(durable=True)
def rollout_cancel(*, rollout: KeyRollout, actor: User) -> KeyRollout:
    permissions.require(permissions.can_cancel_rollout(actor, rollout), "Only the requester can cancel a rollout.")
    rollout = _lock(rollout)
    if rollout.status != KeyRollout.Status.PENDING:
        raise InvalidTransition(rollout.status, "cancel")
    rollout.status = KeyRollout.Status.CANCELLED
    rollout.decided_at = timezone.now()
    rollout.save(update_fields=["status", "decided_at"])
    audit.record(actor=actor, action="key_rollout.cancelled", target=rollout, team=rollout.team)
    return rollout


def _approvals_complete(rollout: KeyRollout) -> bool:
    approvals = list(rollout.approvals.filter(decision="approve"))
    if not rollout.needs_admin_approval:
        return len(approvals) >= 1
    return len({a.approver_id for a in approvals}) >= 2 and any(a.as_admin for a in approvals)


@transaction.atomic(durable=True)
def rollout_approve(*, rollout: KeyRollout, approver: User, note: str = "") -> int | None:
    """Record an approval; once every approval the rollout needs is in, make every person's key (returns
    how many), else None."""
    permissions.require_can_decide_rollout(approver, rollout)
    rollout = _lock(rollout)
    if refusal := permissions.rollout_decide_refusal(rollout):
        raise InvalidTransition(rollout.status, "approve", refusal)
    if rollout.approvals.filter(approver=approver).exists():
        raise InvalidTransition(rollout.status, "approve", "You have already approved this rollout.")
    as_admin = permissions.is_admin(approver)
    KeyRolloutApproval.objects.create(
        rollout=rollout, approver=approver, decision="approve", as_admin=as_admin, note=note
    )
    audit.record(
        actor=approver,
        action="key_rollout.approval_recorded",
        target=rollout,
        team=rollout.team,
        data={"note": note, "as_admin": as_admin},
    )
    if not _approvals_complete(rollout):
        notifications.rollout_waiting(rollout, people=rollout.members.count(), admins_only=True)
        return None
    return _approve(rollout, approver=approver, note=note)


def _current_members(rollout: KeyRollout) -> list[KeyRolloutMember]:
    """Who gets a key at the decision: the listed people still active in the team; for a whole-team rollout,
    whoever is in the team now (people who joined while it waited are added)."""
    if rollout.whole_team:
        listed = set(rollout.members.values_list("user_id", flat=True))
        KeyRolloutMember.objects.bulk_create(
            [KeyRolloutMember(rollout=rollout, user=p) for p in _team_people(rollout.team) if p.pk not in listed]
        )
    in_team = Membership.objects.filter(team_id=rollout.team_id).values("user_id")
    return list(
        rollout.members.filter(user__is_active=True, user_id__in=in_team, key_request__isnull=True).select_related(
            "user"
        )
    )


def _approve(rollout: KeyRollout, *, approver: User, note: str) -> int:
    members = _current_members(rollout)
    if any(m.user_id == approver.pk for m in members):
        raise PermissionDenied("Nobody decides a rollout that gives them a key; another approver does.")
    rollout.status = KeyRollout.Status.APPROVED
    rollout.decided_at = timezone.now()
    rollout.decision_note = note
    rollout.save(update_fields=["status", "decided_at", "decision_note"])
    approvals = list(rollout.approvals.select_related("approver"))
    models = list(rollout.requested_models.all())
    audit.record(
        actor=approver,
        action="key_rollout.approved",
        target=rollout,
        team=rollout.team,
        data={"approvers": [a.approver.email for a in approvals], "keys": len(members), "note": note},
    )
    _member_keys(rollout, members, actor=approver, approvals=approvals, models=models)
    if members:
        # The shared gateway work, once: the team and each person's gateway user. Its completion issues
        # each key's own command.
        gateway_command_issue(
            GatewayCommand.Kind.ROLLOUT_SYNC,
            team=rollout.team,
            payload={"rollout": rollout.pk, "users": [m.user_id for m in members]},
        )
    notifications.rollout_decided(rollout, outcome="approved", note=note, keys=len(members))
    return len(members)


def _member_keys(
    rollout: KeyRollout,
    members: list[KeyRolloutMember],
    *,
    actor: User | None,
    approvals: list[KeyRolloutApproval],
    models: list[ModelPolicy],
    actor_label: str = "",
) -> list[VirtualKey]:
    """Each person's approved request and key, with their audit events (in the caller's transaction). A few
    inserts for the lot, not a dozen queries a person: a rollout to 500 people is one decision's transaction."""
    now = timezone.now()
    requests = KeyRequest.objects.bulk_create(
        [
            KeyRequest(
                requested_by=rollout.requested_by,
                team=rollout.team,
                kind=KeyKind.PERSONAL,
                owner=member.user,
                purpose=rollout.purpose,
                data_classification=rollout.data_classification,
                monthly_budget=rollout.monthly_budget,
                expiry_days=rollout.expiry_days,
                status=KeyRequest.Status.APPROVED,
                needs_admin_approval=rollout.needs_admin_approval,
                decided_at=now,
                decision_note=rollout.decision_note,
                rollout=rollout,
            )
            for member in members
        ],
        batch_size=500,
    )
    chosen = KeyRequest.requested_models.through
    chosen.objects.bulk_create(
        [chosen(keyrequest_id=r.pk, modelpolicy_id=m.pk) for r in requests for m in models], batch_size=1000
    )
    Approval.objects.bulk_create(
        [
            Approval(
                request=r,
                approver=a.approver,
                decision=Approval.Decision.APPROVE,
                as_admin=a.as_admin,
                note=f"Rollout #{rollout.pk}" + (f": {a.note}" if a.note else ""),
                created_at=a.created_at,
            )
            for r in requests
            for a in approvals
        ],
        batch_size=1000,
    )
    for member, key_request in zip(members, requests, strict=True):
        member.key_request = key_request
    KeyRolloutMember.objects.bulk_update(members, ["key_request"], batch_size=500)
    audit.record_many(
        [
            {
                "actor": actor,
                "actor_label": "" if actor else actor_label or "system",
                "action": "key_request.approved",
                "target": key_request,
                "team": rollout.team,
                "data": {
                    "rollout": rollout.pk,
                    "owner": member.user.email,
                    "approvers": [a.approver.email for a in approvals],
                    "joined_later": member.joined_later,
                },
            }
            for member, key_request in zip(members, requests, strict=True)
        ]
    )
    return keys_create_first(
        requests=requests,
        allowed_models=sorted(m.name for m in models),
        expires_at=now + timedelta(days=rollout.expiry_days),
        actor=actor,
    )


@transaction.atomic(durable=True)
def rollout_reject(*, rollout: KeyRollout, approver: User, note: str = "") -> KeyRollout:
    permissions.require_can_decide_rollout(approver, rollout)
    rollout = _lock(rollout)
    if refusal := permissions.rollout_decide_refusal(rollout):
        raise InvalidTransition(rollout.status, "reject", refusal)
    if not note.strip():
        raise ValidationError({"note": "Say why you reject it; the requester sees this."})
    KeyRolloutApproval.objects.create(
        rollout=rollout, approver=approver, decision="reject", as_admin=permissions.is_admin(approver), note=note
    )
    rollout.status = KeyRollout.Status.REJECTED
    rollout.decided_at = timezone.now()
    rollout.decision_note = note
    rollout.save(update_fields=["status", "decided_at", "decision_note"])
    audit.record(actor=approver, action="key_rollout.rejected", target=rollout, team=rollout.team, data={"note": note})
    notifications.rollout_decided(rollout, outcome="rejected", note=note, keys=0)
    return rollout


@transaction.atomic(durable=True)
def rollout_revoke(*, rollout: KeyRollout, actor: User, reason: str = "") -> int:
    """Revoke the rollout: every key it made is revoked (each with its own event), nobody joins it any more.
    Returns how many keys were revoked."""
    permissions.require_can_revoke_rollout(actor, rollout)
    rollout = _lock(rollout)
    if refusal := permissions.rollout_revoke_refusal(rollout):
        raise InvalidTransition(rollout.status, "revoke", refusal)
    reason = (reason or "").strip() or f"rollout #{rollout.pk} revoked by {actor.email}"
    rollout.status = KeyRollout.Status.REVOKED
    rollout.revoked_at = timezone.now()
    rollout.revoked_by = actor
    rollout.save(update_fields=["status", "revoked_at", "revoked_by"])
    keys = (
        VirtualKey.objects.select_for_update(of=("self",))
        .filter(request__rollout=rollout)
        .select_related("owner", "team")
    )
    revoked = sum(1 for key in keys.order_by("pk") if key_withdraw(key=key, actor=actor, reason=reason) is not None)
    audit.record(
        actor=actor,
        action="key_rollout.revoked",
        target=rollout,
        team=rollout.team,
        data={"reason": reason, "keys": revoked},
    )
    return revoked


def rollout_member_joined(*, membership: Membership, actor: User | None, actor_label: str = "") -> None:
    """accounts' membership hook (inside the transaction that added the person to the team): each approved
    rollout of the team that includes people who join later, until its end date, gives them a key."""
    if not membership.user.is_active:
        return
    today = timezone.now().date()
    rollouts = KeyRollout.objects.select_for_update().filter(
        team_id=membership.team_id,
        status=KeyRollout.Status.APPROVED,
        include_joiners=True,
        ends_on__gte=today,
    )
    for rollout in rollouts.order_by("pk"):
        member, created = KeyRolloutMember.objects.get_or_create(
            rollout=rollout, user=membership.user, defaults={"joined_later": True}
        )
        if member.key_request_id is not None:
            continue  # they had one from this rollout already (they left and came back)
        audit.record(
            actor=actor,
            actor_label="" if actor else actor_label or "system",
            action="key_rollout.member_joined",
            target=rollout,
            team=rollout.team,
            data={"user": membership.user.email},
        )
        # A single key: its own command makes the team and user at the gateway as a key request's does.
        (key,) = _member_keys(
            rollout,
            [member],
            actor=actor,
            actor_label=actor_label,
            approvals=list(rollout.approvals.filter(decision="approve").select_related("approver")),
            models=list(rollout.requested_models.all()),
        )
        gateway_command_issue(GatewayCommand.Kind.KEY_GENERATE, key=key)
