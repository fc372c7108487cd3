"""The bench database of `manage.py bench_load`: a mid-size org on top of `seed_demo`, and its clients.

Runs inside the bench database (bench_load calls itself with --prepare there). Everything is made
through the services, as people would make it: people and memberships by the admin, key requests
by the people, approvals by their team's approver (the keys are provisioned at the sandbox gateway,
in-process), and pending requests that fill each approver's queue.

Then months of gateway traffic go into the ledger through `budgets.ingest.ingest_spend_rows`, the
one way spend enters it (which also keeps the budgets' and the dashboards' rollups): LiteLLM-shaped
spend-log rows (bench_ingest's mix of models, tools, errors, streamed $0 calls and cache reads), each
on a person's key after the day they started, a few heavy users and a long tail, weekdays mostly,
and a little traffic on keys govsite does not manage. The key holders' start days are spread over
the window (most early), so the team dashboards and adoption show a real curve, not one day.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from budgets.ingest import ingest_spend_rows
from budgets.models import DailyRollup
from govsite.accounts import services as account_services
from govsite.accounts.models import Membership, OrgRole, Team, TeamRole, User
from govsite.devtools.management.commands.bench_ingest import generate_rows
from govsite.devtools.management.commands.seed_demo import DOMAIN
from keys import services as key_services
from keys.models import DataClassification, KeyKind, KeyRequest, ModelPolicy, VirtualKey

PURPOSES = [
    "Claude Code for day-to-day work on the service",
    "Codex for test generation in CI",
    "Cursor for the frontend rewrite",
    "Kimi CLI for log triage",
    "Batch summaries of incident reports",
]
APPROVAL_QUEUE = "/approvals/"
KEY_REQUESTS_API = "/api/v1/key-requests/"
INGEST_BATCH = 2000  # rows per ingest call, as the pull job books a page of spend logs
UNMANAGED_SHARE = 0.03  # traffic on keys made outside govsite (booked under no team)
SEED = 20260


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


def _session(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


# --- months of traffic ------------------------------------------------------------------------------------


def _backdate_starts(people: list[User], *, days: int, rng: random.Random) -> dict[int, datetime]:
    """Spread the key holders' start over the window, most of them early: the day they joined their team and
    got their key. (Bench data only: the rows were made today through the services, with their events.)"""
    now = timezone.now()
    starts = {}
    for person in people:
        since = now - timedelta(days=days * rng.random() ** 0.5, seconds=rng.randrange(3600))
        starts[person.pk] = since
        User.objects.filter(pk=person.pk).update(date_joined=since)
        Membership.objects.filter(user=person).update(created_at=since)
        KeyRequest.objects.filter(requested_by=person, status=KeyRequest.Status.APPROVED).update(
            created_at=since, decided_at=since
        )
        VirtualKey.objects.filter(owner=person).update(created_at=since, provisioned_at=since)
    return starts


def _at(since: datetime, now: datetime, rng: random.Random) -> datetime:
    """A moment between `since` and now, on a weekday most of the time."""
    moment = since + (now - since) * rng.random()
    if moment.weekday() >= 5 and rng.random() < 0.85:
        moment -= timedelta(days=moment.weekday() - 4)  # to the Friday before
    return max(moment, since)


def _retarget(row: dict, key_hash: str, start: datetime) -> dict:
    """A generated row moved onto `key_hash` at `start` (its duration and everything else kept)."""
    old = datetime.fromisoformat(row["startTime"])
    shift = start - old
    for name in ("startTime", "endTime", "completionStartTime"):
        row[name] = (datetime.fromisoformat(row[name]) + shift).isoformat()
    row["api_key"] = key_hash
    metadata = json.loads(row["metadata"])
    metadata["user_api_key"] = key_hash
    row["metadata"] = json.dumps(metadata)
    return row


def book_spend(*, rows: int, days: int) -> dict:
    """`rows` spend-log rows over the last `days` days on the org's keys, booked through the ingest."""
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    holders = list(User.objects.filter(virtual_keys__isnull=False).distinct().order_by("email"))
    starts = _backdate_starts(holders, days=days, rng=rng)
    keys = list(
        VirtualKey.objects.filter(status__in=VirtualKey.LIVE_STATUSES, provisioned_at__isnull=False)
        .exclude(token_hash="")
        .values_list("token_hash", "owner_id", "provisioned_at")
        .order_by("pk")
    )
    if not keys:
        raise RuntimeError("no provisioned keys to book spend on")
    window_start = now - timedelta(days=days)
    targets = [
        (token_hash, max(starts.get(owner_id, provisioned_at), window_start))
        for token_hash, owner_id, provisioned_at in keys
    ]
    # A few heavy users and a long tail.
    weights = [rng.paretovariate(1.3) for _ in targets]
    started = time.monotonic()
    booked = rejected = 0
    for batch_number in itertools.count():
        size = min(INGEST_BATCH, rows - batch_number * INGEST_BATCH)
        if size <= 0:
            break
        batch = generate_rows(size, seed=SEED + batch_number)
        picks = rng.choices(range(len(targets)), weights=weights, k=size)
        for row, pick in zip(batch, picks, strict=True):
            if rng.random() < UNMANAGED_SHARE:
                _retarget(row, row["api_key"], _at(window_start, now, rng))  # generate_rows' unmanaged keys
            else:
                token_hash, since = targets[pick]
                _retarget(row, token_hash, _at(since, now, rng))
        result = ingest_spend_rows(batch, "pull", evaluate_budgets=False)
        booked += result.inserted
        rejected += result.rejected_count
    seconds = time.monotonic() - started
    last_30 = (now - timedelta(days=29)).date()
    by_team = dict(
        DailyRollup.objects.filter(day__gte=last_30, team__isnull=False)
        .values_list("team_id")
        .annotate(cost=Sum("cost"))
        .values_list("team_id", "cost")
    )
    return {
        "rows": booked,
        "rejected": rejected,
        "days": days,
        "seconds": round(seconds, 1),
        "keys": len(targets),
        "cost_30d_by_team": {
            slug: str(by_team.get(pk, Decimal(0))) for pk, slug in Team.objects.values_list("pk", "slug")
        },
    }


# --- the whole data set and the clients' spec ---------------------------------------------------------------


def prepare(*, people: int, pending: int, clients: int, spend_rows: int, spend_days: int) -> dict:
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
    ledger = book_spend(rows=spend_rows, days=spend_days)
    for team in teams:
        waiting = KeyRequest.objects.filter(team=team, status=KeyRequest.Status.PENDING).count()
        for n, person in zip(range(waiting, pending), itertools.cycle(by_team[team.pk]), strict=False):
            key_services.key_request_create(requester=person, data=_key_input(team, n, models, internal, pending=True))

    approvers = [approver_of[team.pk] for team in teams]
    admins = list(User.objects.filter(org_role_grants__role=OrgRole.ADMIN).order_by("email"))
    members = list(
        User.objects.filter(Q(key_requests__isnull=False), email__startswith="bench").distinct().order_by("email")
    )
    # Each team's dashboard, looked at by its approver (who sees cost per person) and by the admins, in turn.
    dashboard_viewers = [
        (team, viewer) for team in teams for viewer in (approver_of[team.pk], admins[team.pk % len(admins)])
    ]
    per_endpoint = -(-clients // 5)  # locust spreads the clients evenly over the five kinds
    inbox_viewers = [*approvers, *admins]
    key_list_viewers = [(user, "mine") for user in members] + [(user, "team") for user in approvers]
    return {
        "ledger": ledger,
        "endpoints": {
            "approval_queue": {
                "path_pattern": APPROVAL_QUEUE,
                "expect": "Key requests waiting for you",
                "clients": [
                    {"path": APPROVAL_QUEUE, "session": _session(user)}
                    for user in itertools.islice(itertools.cycle(approvers), per_endpoint)
                ],
            },
            "team_dashboard": {
                "path_pattern": reverse("dashboard_team", kwargs={"slug": "SLUG"}).replace("SLUG", "<slug>"),
                "clients": [
                    {
                        "path": reverse("dashboard_team", kwargs={"slug": team.slug}),
                        "session": _session(viewer),
                        "expect": f"{team.name}: cost",
                    }
                    for team, viewer in itertools.islice(itertools.cycle(dashboard_viewers), per_endpoint)
                ],
            },
            "inbox": {
                "path_pattern": reverse("inbox"),
                "expect": "Needs me",
                "clients": [
                    {"path": reverse("inbox"), "session": _session(user)}
                    for user in itertools.islice(itertools.cycle(inbox_viewers), per_endpoint)
                ],
            },
            "key_list": {
                "path_pattern": reverse("key_list") + "?scope=<mine|team>",
                "expect": "Spend this month",
                "clients": [
                    {"path": f"{reverse('key_list')}?scope={scope}", "session": _session(user)}
                    for user, scope in itertools.islice(itertools.cycle(key_list_viewers), per_endpoint)
                ],
            },
            "key_requests": {
                "path_pattern": KEY_REQUESTS_API,
                # The API's JSON page of the person's own requests (each has a status).
                "expect": '"status"',
                "accept": "application/json",
                "clients": [
                    {"path": KEY_REQUESTS_API, "session": _session(user)}
                    for user in itertools.islice(itertools.cycle(members), per_endpoint)
                ],
            },
        },
    }
