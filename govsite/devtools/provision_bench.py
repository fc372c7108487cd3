"""The phases of `manage.py bench_provision`, run inside the bench database while real `rqworker` processes
(started by the command) carry out the gateway commands against the sandbox. Each returns its figures."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.db.models import Max
from django.utils import timezone

from govsite.accounts.models import Membership, OrgRole, OrgRoleGrant, Team, TeamRole, User
from govsite.gateway.client import get_client
from keys import gateway_handlers, services
from keys.models import DataClassification, GatewayCommand, KeyKind, ModelPolicy, VirtualKey

ADMIN_EMAIL = "bench-admin@provision.bench"


def run_phase(phase: str, *, keys: int, count: int, tag: str, timeout: float) -> dict:
    if phase == "setup":
        return _setup()
    if phase == "rollout":
        return _rollout(keys=keys, tag=tag, timeout=timeout)
    if phase == "singles":
        return _singles(count=count, tag=tag, timeout=timeout)
    raise ValueError(f"unknown phase {phase!r}")


def _setup() -> dict:
    admin = User.objects.create(email=ADMIN_EMAIL, full_name="Bench Admin", password=make_password(None))
    OrgRoleGrant.objects.create(user=admin, role=OrgRole.ADMIN)
    ModelPolicy.objects.get_or_create(
        name="gpt-4o",
        defaults={"provider": "openai", "max_classification": DataClassification.objects.get(key="confidential")},
    )
    return {"admin": admin.pk}


def _people(team: Team, n: int, *, slug: str) -> tuple[User, list[User]]:
    """A lead (approver) and n-1 members, written directly: the bench measures provisioning, not sign-ups."""
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(email=f"p{i:05d}@{slug}.bench", full_name=f"Person {i}", password=password) for i in range(n)]
    )
    Membership.objects.bulk_create(
        [
            Membership(user=u, team=team, role=TeamRole.APPROVER if i == 0 else TeamRole.MEMBER)
            for i, u in enumerate(users)
        ]
    )
    return users[0], users[1:]


def _policy_input(team: Team) -> dict:
    return {
        "team": team,
        "purpose": "Claude Code for the whole department",
        "data_classification": DataClassification.objects.get(key="internal"),
        "models": [ModelPolicy.objects.get(name="gpt-4o")],
        "monthly_budget": Decimal("50"),
        "expiry_days": 60,
    }


def _wait_active(keys, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while keys.filter(status=VirtualKey.Status.ACTIVE).count() < expected:
        failed = keys.filter(status=VirtualKey.Status.FAILED).count()
        if failed or time.monotonic() > deadline:
            raise RuntimeError(
                f"{keys.exclude(status=VirtualKey.Status.ACTIVE).count()} of {expected} keys not active "
                f"({failed} failed) after {timeout:.0f}s"
            )
        time.sleep(0.05)


def _rollout(*, keys: int, tag: str, timeout: float) -> dict:
    slug = f"bench-rollout-{tag}"
    team = Team.objects.create(name=f"Rollout {tag}", slug=slug)
    lead, _ = _people(team, keys, slug=slug)
    admin = User.objects.get(email=ADMIN_EMAIL)
    rollout = services.rollout_create(requester=lead, data=services.RolloutInput(**_policy_input(team)))
    started = time.monotonic()
    made = services.rollout_approve(rollout=rollout, approver=admin)
    approve_seconds = time.monotonic() - started
    rollout.refresh_from_db()
    rollout_keys = VirtualKey.objects.filter(request__rollout=rollout)
    _wait_active(rollout_keys, made, timeout)
    last = rollout_keys.aggregate(last=Max("provisioned_at"))["last"]
    sync = GatewayCommand.objects.get(kind=GatewayCommand.Kind.ROLLOUT_SYNC, payload__rollout=rollout.pk)
    with get_client() as client:
        held = client.key_list_all(team_id=gateway_handlers.gateway_team_id(team.pk))
    return {
        "keys": made,
        "approve_seconds": approve_seconds,
        "decision_to_last_active": (last - rollout.decided_at).total_seconds(),
        "sync_seconds": (sync.done_at - rollout.decided_at).total_seconds(),
        "keys_seconds": (last - sync.done_at).total_seconds(),
        "gateway_keys": len({k["key_alias"] for k in held}),
        "attempts": sum(
            GatewayCommand.objects.filter(key__request__rollout=rollout).values_list("attempts", flat=True)
        ),
    }


def _singles(*, count: int, tag: str, timeout: float) -> dict:
    slug = f"bench-singles-{tag}"
    team = Team.objects.create(name=f"Singles {tag}", slug=slug)
    approver, members = _people(team, count + 1, slug=slug)
    latencies = []
    for member in members:
        data = services.KeyRequestInput(kind=KeyKind.PERSONAL, **_policy_input(team))
        request = services.key_request_create(requester=member, data=data)
        key = services.key_request_approve(request=request, approver=approver)
        request.refresh_from_db()
        _wait_active(VirtualKey.objects.filter(pk=key.pk), 1, timeout)
        key.refresh_from_db()
        latencies.append((key.provisioned_at - request.decided_at).total_seconds())
    return {"latencies": latencies, "keys": len(latencies), "at": (timezone.now() - timedelta(0)).isoformat()}
