"""The bench database of `manage.py bench_load`: a mid-size org on top of `seed_demo`, and its clients.

Runs inside the bench database (bench_load calls itself with --prepare there). Everything is made
through the services, as people would make it: people and memberships by the admin, key requests
by the people, approvals by their team's approver (the keys are provisioned at the sandbox gateway,
in-process), and pending requests that fill each approver's queue.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from django.db.models import Q
from django.test import Client
from django.urls import Resolver404, resolve

from govsite.accounts import services as account_services
from govsite.accounts.management.commands.seed_demo import DOMAIN
from govsite.accounts.models import Membership, OrgRole, Team, TeamRole, User
from govsite.management.commands.bench_load import DASHBOARD_CANDIDATES, KEY_REQUEST_CANDIDATES
from keys import services as key_services
from keys.models import DataClassification, KeyKind, KeyRequest, ModelPolicy

PURPOSES = [
    "Claude Code for day-to-day work on the service",
    "Codex for test generation in CI",
    "Cursor for the frontend rewrite",
    "Kimi CLI for log triage",
    "Batch summaries of incident reports",
]


def _key_input(team: Team, n: int, models: list[ModelPolicy], internal: DataClassification, *, pending: bool):
    return key_services.KeyRequestInput(
        team=team,
        kind=KeyKind.PERSONAL,
        purpose=PURPOSES[n % len(PURPOSES)] + (" (a second key, for a side project)" if pending else ""),
        data_classification=internal,
        models=models,
        monthly_budget=Decimal(25 + 25 * (n % 4)),
        expiry_days=90,
    )


def _first_path(candidates: list[tuple[str, str, bool]]) -> tuple[str, str]:
    """The first candidate path that resolves, and a note when it only stands in for the real page."""
    for pattern, label, stand_in in candidates:
        try:
            resolve(pattern.format(slug="platform"))
        except Resolver404:
            continue
        return pattern, label if stand_in else ""
    raise RuntimeError(f"none of {candidates} resolves")


def _session(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def prepare(*, people: int, pending: int, clients: int) -> dict:
    admin = User.objects.get(email=f"ada@{DOMAIN}")
    teams = list(Team.objects.order_by("slug"))
    approver_of = {
        m.team_id: m.user
        for m in Membership.objects.filter(role=TeamRole.APPROVER).select_related("user").order_by("user__email")
    }
    models = list(ModelPolicy.objects.filter(name__in=["gpt-4o", "gpt-4o-mini"]).order_by("name"))
    internal = DataClassification.objects.get(key="internal")

    by_team: dict[int, list[User]] = {team.pk: [] for team in teams}
    for n in range(people):
        team = teams[n % len(teams)]
        email = f"bench{n:04d}@{DOMAIN}"
        person = User.objects.filter(email=email).first() or account_services.user_create(
            actor=admin, email=email, full_name=f"Bench Person {n:04d}"
        )
        if not Membership.objects.filter(user=person, team=team).exists():
            account_services.membership_add(actor=admin, team=team, user=person)
            request = key_services.key_request_create(
                requester=person, data=_key_input(team, n, models, internal, pending=False)
            )
            key_services.key_request_approve(request=request, approver=approver_of[team.pk])
        by_team[team.pk].append(person)
    for team in teams:
        waiting = KeyRequest.objects.filter(team=team, status=KeyRequest.Status.PENDING).count()
        for n, person in zip(range(waiting, pending), itertools.cycle(by_team[team.pk]), strict=False):
            key_services.key_request_create(requester=person, data=_key_input(team, n, models, internal, pending=True))

    approvers = [approver_of[team.pk] for team in teams]
    admins = list(User.objects.filter(org_role_grants__role=OrgRole.ADMIN).order_by("email"))
    members = list(
        User.objects.filter(Q(key_requests__isnull=False), email__startswith="bench").distinct().order_by("email")
    )
    dashboard, dashboard_note = _first_path(DASHBOARD_CANDIDATES)
    requests_path, requests_note = _first_path(KEY_REQUEST_CANDIDATES)
    per_endpoint = -(-clients // 3)  # locust spreads the clients evenly over the three kinds
    return {
        "endpoints": {
            "approval_queue": {
                "path_pattern": "/approvals/",
                "expect": "Key requests waiting for you",
                "clients": [
                    {"path": "/approvals/", "session": _session(user)}
                    for user in itertools.islice(itertools.cycle(approvers), per_endpoint)
                ],
            },
            "team_dashboard": {
                "path_pattern": dashboard,
                "expect": "Cost centre" if dashboard.startswith("/teams/") else "",
                "note": dashboard_note,
                "clients": [
                    {"path": dashboard.format(slug=team.slug), "session": _session(admin_user)}
                    for team, admin_user in itertools.islice(
                        zip(itertools.cycle(teams), itertools.cycle(admins), strict=False), per_endpoint
                    )
                ],
            },
            "key_requests": {
                "path_pattern": requests_path,
                # The key list page, or the API's JSON with the people's requests in it (each has a status).
                "expect": "My requests" if requests_path == "/keys/" else '"status"',
                "accept": "text/html" if requests_path == "/keys/" else "application/json",
                "note": requests_note,
                "clients": [
                    {"path": requests_path, "session": _session(user)}
                    for user in itertools.islice(itertools.cycle(members), per_endpoint)
                ],
            },
        },
    }
