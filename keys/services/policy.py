"""Key policy: which models may be asked for (and for which data), and each team's key rules."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from keys.models import DataClassification, ModelPolicy, TeamKeyPolicy

MAX_MONTHLY_BUDGET = Decimal(getattr(settings, "KEY_MAX_MONTHLY_BUDGET", "100000"))
MODEL_POLICY_FIELDS = ("name", "provider", "note", "access", "max_classification", "flat_rate", "is_active")


def team_key_policy(team: Team) -> TeamKeyPolicy:
    policy = TeamKeyPolicy.objects.filter(team=team).first()
    return policy or TeamKeyPolicy(team=team)


def _policy_snapshot(policy: ModelPolicy) -> dict:
    data = {f: getattr(policy, f) for f in MODEL_POLICY_FIELDS if f != "max_classification"}
    data["max_classification"] = policy.max_classification.key if policy.max_classification_id else None
    return data


@transaction.atomic(durable=True)
def model_policy_save(*, actor: User, policy: ModelPolicy | None = None, **fields) -> ModelPolicy:
    """Create a model policy, or change one; the audit event carries before and after."""
    permissions.require(permissions.can_manage_model_policy(actor), "Only admins can change model policy.")
    unknown = set(fields) - set(MODEL_POLICY_FIELDS)
    if unknown:
        raise ValueError(f"unknown model policy fields {sorted(unknown)}")
    if policy is None:
        before = None
        policy = ModelPolicy(**fields)
    else:
        policy = ModelPolicy.objects.select_for_update().get(pk=policy.pk)
        before = _policy_snapshot(policy)
        for name, value in fields.items():
            setattr(policy, name, value)
    policy.full_clean()
    after = _policy_snapshot(policy)
    if before == after:
        return policy
    policy.save()
    audit.record(
        actor=actor,
        action="model_policy.created" if before is None else "model_policy.changed",
        target=policy,
        data={"before": before, "after": after},
    )
    return policy


@transaction.atomic(durable=True)
def data_classification_relabel(*, actor: User, classification: DataClassification, label: str) -> None:
    permissions.require(permissions.can_manage_model_policy(actor), "Only admins can rename data classes.")
    label = label.strip()
    if not label:
        raise ValidationError({"label": "A label is required."})
    before = classification.label
    if before == label:
        return
    classification.label = label
    classification.save(update_fields=["label"])
    audit.record(
        actor=actor,
        action="data_classification.relabelled",
        target=classification,
        data={"before": before, "after": label, "level": classification.level},
    )


@transaction.atomic(durable=True)
def team_key_policy_save(
    *, actor: User, team: Team, max_expiry_days: int, auto_approve: bool, auto_approve_max_budget: Decimal
) -> TeamKeyPolicy:
    permissions.require(permissions.can_manage_teams(actor), "Only admins can change a team's key policy.")
    policy, _ = TeamKeyPolicy.objects.select_for_update().get_or_create(team=team)
    before = {
        "max_expiry_days": policy.max_expiry_days,
        "auto_approve": policy.auto_approve,
        "auto_approve_max_budget": str(policy.auto_approve_max_budget),
    }
    policy.max_expiry_days = max_expiry_days
    policy.auto_approve = auto_approve
    policy.auto_approve_max_budget = auto_approve_max_budget
    policy.full_clean()
    policy.save()
    after = {
        "max_expiry_days": policy.max_expiry_days,
        "auto_approve": policy.auto_approve,
        "auto_approve_max_budget": str(policy.auto_approve_max_budget),
    }
    if before != after:
        audit.record(
            actor=actor,
            action="team.key_policy_changed",
            target=team,
            team=team,
            data={"before": before, "after": after},
        )
    return policy
