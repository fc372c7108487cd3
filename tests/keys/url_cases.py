"""Permission rows for the key lifecycle's URLs (see tests/permissions.py for the four checks)."""

from __future__ import annotations

import itertools
from decimal import Decimal

from govsite.accounts.models import TeamRole
from keys.models import (
    DataClassification,
    GatewayCommand,
    KeyKind,
    KeyRequest,
    KeyRollout,
    KeyRolloutMember,
    ModelPolicy,
    TeamKeyPolicy,
    UnmanagedKey,
    VirtualKey,
)
from tests.factories import KeyRequestFactory, VirtualKeyFactory, make_user
from tests.keys.conftest import classification
from tests.permissions import (
    ADMIN,
    ALL_ROLES,
    APPROVER_A,
    AUDITOR,
    FINANCE,
    MEMBER_A,
    MEMBER_B,
    UrlCase,
    register,
)

ADMIN_ONLY = frozenset({ADMIN})
MEMBERS = frozenset({APPROVER_A, MEMBER_A, MEMBER_B})
DECIDERS = frozenset({ADMIN, APPROVER_A})
KEY_MANAGERS = frozenset({ADMIN, APPROVER_A, MEMBER_A, MEMBER_B})
OWNERS = frozenset({MEMBER_A, MEMBER_B})
MISSING = 987_654_321
_n = itertools.count(1)


def _member_of(world, team):
    """The plain member of the team (member_a for team A, member_b for team B)."""
    return world.users[MEMBER_B] if team == world.team_b else world.users[MEMBER_A]


def _policy() -> ModelPolicy:
    policy, _ = ModelPolicy.objects.get_or_create(
        name="gpt-4o", defaults={"provider": "openai", "max_classification": classification("confidential")}
    )
    return policy


def _request(world, team) -> KeyRequest:
    return KeyRequestFactory(requested_by=_member_of(world, team), team=team, requested_models=[_policy()])


def _key(world, team, *, kind=KeyKind.PERSONAL) -> VirtualKey:
    return VirtualKeyFactory(owner=_member_of(world, team), team=team, kind=kind, encrypted=True)


def _request_kwargs(world, team):
    return {"pk": _request(world, team).pk}


def _key_kwargs(world, team):
    return {"pk": _key(world, team).pk}


def _service_key_kwargs(world, team):
    return {"pk": _key(world, team, kind=KeyKind.SERVICE).pk}


def _missing(world):
    return {"pk": MISSING}


def _new_request_form(world, team):
    return {
        "team": team.pk,
        "kind": "personal",
        "purpose": "Claude Code for the refactor",
        "data_classification": classification("internal").pk,
        "models": [_policy().pk],
        "monthly_budget": "25",
        "expiry_days": "30",
    }


def _reassign_form(world, team):
    return {"owner": make_user(email=f"new-owner-{next(_n)}@example.com", teams={team: TeamRole.MEMBER}).pk}


def _policy_form(world, team):
    return {
        "name": f"model-{next(_n)}",
        "provider": "openai",
        "note": "",
        "access": "open",
        "max_classification": classification("internal").pk,
        "is_active": "on",
    }


def _policy_kwargs(world, team):
    return {"pk": _policy().pk}


def _classification_kwargs(world, team):
    return {"pk": classification("internal").pk}


def _failed_command(world, team):
    key = _key(world, team)
    command = GatewayCommand.objects.create(
        kind=GatewayCommand.Kind.KEY_GENERATE,
        key=key,
        team=team,
        status=GatewayCommand.Status.FAILED,
        attempts=8,
        last_error="boom",
    )
    return {"pk": command.pk}


def _unmanaged(world, team):
    return {"pk": UnmanagedKey.objects.create(token_hash=f"{next(_n):064d}", alias=f"hand-made-{next(_n)}").pk}


def _adopt_form(world, team):
    return {
        "action": "adopt",
        "team": team.pk,
        "owner": _member_of(world, team).pk,
        "kind": "service",
        "service_name": "legacy",
    }


register(
    UrlCase("key_list"),
    UrlCase("key_request_create", allowed=MEMBERS),
    UrlCase(
        "key_request_create",
        method="post",
        data=_new_request_form,
        allowed=MEMBERS,
        effect=lambda c: KeyRequest.objects.filter(
            requested_by=c.user, team=c.team, purpose=c.data["purpose"]
        ).exists(),
    ),
    UrlCase("key_request_detail", kwargs=_request_kwargs, scoped=True, unreachable=_missing),
    UrlCase(
        "key_request_cancel",
        method="post",
        kwargs=_request_kwargs,
        scoped=True,
        allowed=OWNERS,
        unreachable=_missing,
        effect=lambda c: KeyRequest.objects.get(pk=c.pk).status == KeyRequest.Status.CANCELLED,
    ),
    UrlCase("key_detail", kwargs=_key_kwargs, scoped=True, unreachable=_missing),
    UrlCase(
        "key_reveal",
        method="post",
        kwargs=_key_kwargs,
        scoped=True,
        allowed=OWNERS,
        ok_status=200,
        unreachable=_missing,
        effect=lambda c: VirtualKey.objects.get(pk=c.pk).revealed_at is not None,
    ),
    UrlCase("key_revoke", kwargs=_key_kwargs, scoped=True, allowed=KEY_MANAGERS, unreachable=_missing),
    UrlCase(
        "key_revoke",
        method="post",
        kwargs=_key_kwargs,
        scoped=True,
        allowed=KEY_MANAGERS,
        data=lambda w, t: {"reason": "no longer needed"},
        unreachable=_missing,
        effect=lambda c: VirtualKey.objects.get(pk=c.pk).status == VirtualKey.Status.REVOKING,
    ),
    UrlCase("key_rotate", kwargs=_key_kwargs, scoped=True, allowed=KEY_MANAGERS, unreachable=_missing),
    UrlCase(
        "key_rotate",
        method="post",
        kwargs=_key_kwargs,
        scoped=True,
        allowed=KEY_MANAGERS,
        unreachable=_missing,
        effect=lambda c: VirtualKey.objects.filter(rotated_from_id=c.pk).exists(),
    ),
    UrlCase(
        "key_reassign",
        method="post",
        kwargs=_service_key_kwargs,
        scoped=True,
        allowed=DECIDERS,
        data=_reassign_form,
        unreachable=_missing,
        effect=lambda c: VirtualKey.objects.get(pk=c.pk).owner_id == c.data["owner"],
    ),
    UrlCase("approval_queue", allowed=DECIDERS),
    UrlCase(
        "approval_decide",
        method="post",
        kwargs=_request_kwargs,
        scoped=True,
        allowed=DECIDERS,
        data=lambda w, t: {"decision": "approve", "note": "fine"},
        unreachable=_missing,
        effect=lambda c: KeyRequest.objects.get(pk=c.pk).status == KeyRequest.Status.APPROVED,
    ),
    UrlCase(
        "approval_decide_bulk",
        method="post",
        allowed=DECIDERS,
        data=lambda w, t: {"ids": [_request(w, t).pk, _request(w, t).pk], "decision": "approve", "note": "fine"},
        effect=lambda c: all(
            KeyRequest.objects.get(pk=pk).status == KeyRequest.Status.APPROVED for pk in c.data["ids"]
        ),
    ),
    UrlCase("model_policy_list", allowed=ADMIN_ONLY),
    UrlCase("model_policy_create", allowed=ADMIN_ONLY),
    UrlCase(
        "model_policy_create",
        method="post",
        data=_policy_form,
        allowed=ADMIN_ONLY,
        effect=lambda c: ModelPolicy.objects.filter(name=c.data["name"]).exists(),
    ),
    UrlCase("model_policy_edit", kwargs=_policy_kwargs, allowed=ADMIN_ONLY, unreachable=_missing),
    UrlCase(
        "model_policy_edit",
        method="post",
        kwargs=_policy_kwargs,
        data=_policy_form,
        allowed=ADMIN_ONLY,
        unreachable=_missing,
        effect=lambda c: ModelPolicy.objects.get(pk=c.pk).name == c.data["name"],
    ),
    UrlCase(
        "classification_relabel",
        method="post",
        kwargs=_classification_kwargs,
        allowed=ADMIN_ONLY,
        data=lambda w, t: {"label": f"Internal {next(_n)}"},
        unreachable=_missing,
        effect=lambda c: DataClassification.objects.get(pk=c.pk).label == c.data["label"],
    ),
    UrlCase(
        "team_key_policy",
        kwargs=lambda w, t: {"slug": t.slug},
        allowed=ADMIN_ONLY,
        unreachable=lambda w: {"slug": "no-such-team"},
    ),
    UrlCase(
        "team_key_policy",
        method="post",
        kwargs=lambda w, t: {"slug": t.slug},
        allowed=ADMIN_ONLY,
        data=lambda w, t: {"max_expiry_days": "60", "auto_approve_max_budget": "0"},
        unreachable=lambda w: {"slug": "no-such-team"},
        effect=lambda c: TeamKeyPolicy.objects.filter(team__slug=c.kwargs["slug"], max_expiry_days=60).exists(),
    ),
    UrlCase("gateway_commands", allowed=frozenset({ADMIN, AUDITOR})),
    UrlCase(
        "gateway_command_retry",
        method="post",
        kwargs=_failed_command,
        allowed=ADMIN_ONLY,
        unreachable=_missing,
        effect=lambda c: GatewayCommand.objects.get(pk=c.pk).status != GatewayCommand.Status.FAILED,
    ),
    UrlCase("unmanaged_keys", allowed=frozenset({ADMIN, AUDITOR})),
    UrlCase(
        "unmanaged_key_decide",
        method="post",
        kwargs=_unmanaged,
        data=_adopt_form,
        allowed=ADMIN_ONLY,
        unreachable=_missing,
        effect=lambda c: UnmanagedKey.objects.get(pk=c.pk).status == UnmanagedKey.Status.ADOPTED,
    ),
)


# --- rollouts ---------------------------------------------------------------------------------------------


def _rollout(world, team, *, status=KeyRollout.Status.PENDING) -> KeyRollout:
    """A rollout to one member of the team, asked by another approver of it (so approver_a may decide it)."""
    lead = make_user(email=f"rollout-lead-{next(_n)}@example.com", teams={team: TeamRole.APPROVER})
    rollout = KeyRollout.objects.create(
        requested_by=lead,
        team=team,
        whole_team=False,
        purpose="Claude Code for the team",
        data_classification=classification("internal"),
        monthly_budget=Decimal("20"),
        expiry_days=30,
        status=status,
    )
    rollout.requested_models.set([_policy()])
    KeyRolloutMember.objects.create(rollout=rollout, user=_member_of(world, team))
    return rollout


def _rollout_kwargs(world, team):
    return {"pk": _rollout(world, team).pk}


def _approved_rollout_kwargs(world, team):
    return {"pk": _rollout(world, team, status=KeyRollout.Status.APPROVED).pk}


def _new_rollout_form(world, team):
    return {
        "team": team.pk,
        "whole_team": "no",
        "people": [_member_of(world, team).pk],
        "purpose": f"Pilot {next(_n)}",
        "data_classification": classification("internal").pk,
        "models": [_policy().pk],
        "monthly_budget": "25",
        "expiry_days": "30",
    }


ROLLOUT_READERS = frozenset({ADMIN, FINANCE, AUDITOR, APPROVER_A})

register(
    UrlCase("rollout_list"),
    UrlCase("rollout_create", allowed=DECIDERS),
    UrlCase(
        "rollout_create",
        method="post",
        data=_new_rollout_form,
        allowed=DECIDERS,
        effect=lambda c: KeyRollout.objects.filter(requested_by=c.user, purpose=c.data["purpose"]).exists(),
    ),
    # People outside a rollout's scope do not learn it exists: 404, like another team's.
    UrlCase(
        "rollout_detail",
        kwargs=_rollout_kwargs,
        scoped=True,
        allowed=ROLLOUT_READERS,
        refused_status=404,
        unreachable=_missing,
    ),
    UrlCase(
        "rollout_decide",
        method="post",
        kwargs=_rollout_kwargs,
        scoped=True,
        allowed=DECIDERS,
        data=lambda w, t: {"decision": "approve", "note": "go"},
        unreachable=_missing,
        effect=lambda c: KeyRollout.objects.get(pk=c.pk).status == KeyRollout.Status.APPROVED,
    ),
    UrlCase("rollout_revoke", kwargs=_approved_rollout_kwargs, scoped=True, allowed=DECIDERS, unreachable=_missing),
    UrlCase(
        "rollout_revoke",
        method="post",
        kwargs=_approved_rollout_kwargs,
        scoped=True,
        allowed=DECIDERS,
        data=lambda w, t: {"reason": "pilot over"},
        unreachable=_missing,
        effect=lambda c: KeyRollout.objects.get(pk=c.pk).status == KeyRollout.Status.REVOKED,
    ),
)

__all__ = ["ALL_ROLES", "FINANCE"]
