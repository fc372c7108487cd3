"""Needs me: for every role, the inbox's counts are what each queue holds, its count is in the navigation, a
request approved once waits without buttons for its first approver, and the page reads a fixed number of
queries whatever the size of the queues."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import reviews
from budgets.models import BudgetAlert, Notice
from budgets.quarantine import hold, quarantine_counts
from govsite import inbox
from keys import services as key_services
from keys.models import GatewayCommand, KeyRequest, UnmanagedKey
from tests.factories import (
    BudgetFactory,
    BudgetIncreaseRequestFactory,
    KeyRequestFactory,
    VirtualKeyFactory,
    make_user,
)
from tests.keys.conftest import open_model, request_input, restricted_model  # noqa: F401

pytestmark = pytest.mark.django_db


def _counts(user) -> dict[str, int]:
    return {section.provider.kind: section.count for section in inbox.inbox(user=user).sections}


@pytest.fixture
def waiting(team_a, team_b, admin_user, approver_a_user, member_a_user, member_b_user, open_model, restricted_model):  # noqa: F811
    """One of each kind of item, in team A unless said otherwise."""
    KeyRequestFactory(requested_by=member_a_user, team=team_a, requested_models=[open_model])
    KeyRequestFactory(requested_by=member_b_user, team=team_b, requested_models=[open_model])
    restricted = key_services.key_request_create(
        requester=member_a_user, data=request_input(team_a, [restricted_model])
    )
    key_services.key_request_approve(request=restricted, approver=approver_a_user, note="ok from the team")
    budget = BudgetFactory(team=team_a, amount=Decimal("100"), approver_limit=Decimal("50"), created_by=admin_user)
    BudgetIncreaseRequestFactory(budget=budget, requested_by=member_a_user, amount=Decimal("20"))  # approvers
    BudgetIncreaseRequestFactory(budget=budget, requested_by=member_a_user, amount=Decimal("500"))  # finance
    soon = VirtualKeyFactory(team=team_a, owner=member_a_user, expires_at=timezone.now() + timedelta(days=3))
    VirtualKeyFactory(team=team_a, owner=member_a_user, expires_at=timezone.now() + timedelta(days=60))
    reviews.access_review_open(
        actor=admin_user, name="Q4", due_on=timezone.now().date() + timedelta(days=7), on_due="escalate", teams=[team_a]
    )
    alert = BudgetAlert.objects.create(
        budget=budget,
        period_start=timezone.now().date().replace(day=1),
        threshold=80,
        spend=Decimal("81"),
        amount=budget.amount,
        percent=Decimal("81"),
    )
    Notice.objects.create(user=approver_a_user, title="Platform reached 80%", budget_alert=alert)
    Notice.objects.create(user=approver_a_user, title="Read already", budget_alert=alert, read_at=timezone.now())
    Notice.objects.create(user=approver_a_user, title="Not an alert")
    GatewayCommand.objects.create(kind=GatewayCommand.Kind.KEY_UPDATE, key=soon, status="failed", last_error="boom")
    hold([({"id": "broken"}, "startTime", "not a time")], "pull")
    UnmanagedKey.objects.create(token_hash="f" * 64, alias="made-by-hand")
    return restricted


EXPECTED = {
    # kind: {role: count}; a role missing from a kind has no such section at all
    "key_requests": {"admin": 3, "approver_a": 1},
    "key_requests_waiting": {"admin": 0, "approver_a": 1},
    "budget_increases": {"admin": 2, "finance": 2, "approver_a": 1},
    "access_reviews": {"admin": 2, "approver_a": 2},
    # (a rollout's key waiting for its owner: tests/keys/test_rollouts.py shows one listed, counted and gone)
    "rollout_keys": {"admin": 0, "finance": 0, "approver_a": 0, "member_a": 0, "member_b": 0},
    "expiring_keys": {"admin": 0, "finance": 0, "approver_a": 0, "member_a": 1, "member_b": 0},
    "budget_alerts": {"admin": 0, "finance": 0, "approver_a": 1, "member_a": 0, "member_b": 0},
    "gateway_commands": {"admin": 1},
    "quarantined_rows": {"admin": 1},
    "unmanaged_keys": {"admin": 1},
}


@pytest.mark.parametrize("role", ["admin", "finance", "auditor", "approver_a", "member_a", "member_b"])
def test_inbox_counts_are_what_each_queue_holds(role, waiting, world):
    user = world.users[role]
    counts = _counts(user)
    expected = {kind: per_role[role] for kind, per_role in EXPECTED.items() if role in per_role}
    if role == "auditor":
        expected = {}  # an auditor decides nothing: no section, no count
    assert counts == expected

    # Each count is what the queue's own page lists to the same person.
    client = world.client(role)
    pages = {
        "key_requests": ("approval_queue", lambda r: r.context["page"].paginator.count),
        "key_requests_waiting": ("approval_queue", lambda r: len(r.context["awaiting_others"])),
        "budget_increases": ("budget_increase_queue", lambda r: r.context["page"].paginator.count),
        "access_reviews": ("access_review_queue", lambda r: r.context["page"].paginator.count),
        "unmanaged_keys": ("unmanaged_keys", lambda r: r.context["page"].paginator.count),
        "gateway_commands": ("gateway_commands", lambda r: r.context["counts"].get("failed", 0)),
    }
    for kind, count in counts.items():
        if kind in pages:
            name, read = pages[kind]
            assert read(client.get(reverse(name))) == count, kind
    if "quarantined_rows" in counts:
        assert quarantine_counts()["held"] == counts["quarantined_rows"]

    # The navigation shows the sum of what waits for a decision (not what waits for someone else).
    home = client.get(reverse("home"))
    assert home.context["nav"]["inbox"] == sum(n for kind, n in counts.items() if kind != "key_requests_waiting")
    # Home and the inbox reuse the sections they read; every other page counts in one query: the same figure.
    for name in ("inbox", "key_list", "notice_list"):
        assert client.get(reverse(name)).context["nav"]["inbox"] == home.context["nav"]["inbox"], name


def test_a_request_approved_once_waits_for_its_first_approver_without_buttons(waiting, approver_a_client):
    restricted = waiting
    page = approver_a_client.get(reverse("approval_queue"))
    assert restricted not in list(page.context["page"].object_list)
    assert list(page.context["awaiting_others"]) == [restricted]
    assert reverse("approval_decide", args=[restricted.pk]) not in page.content.decode()

    detail = approver_a_client.get(reverse("key_request_detail", args=[restricted.pk]))
    assert detail.context["actions"].decide is False and detail.context["actions"].approved_by_me
    body = detail.content.decode()
    assert reverse("approval_decide", args=[restricted.pk]) not in body
    assert "nothing is left for you to decide" in body

    # The inbox lists it as waiting, with no decision on it.
    sections = inbox.inbox(user=restricted.approvals.get().approver).sections
    section = next(s for s in sections if s.provider.kind == "key_requests_waiting")
    assert section.provider.counts is False and [i.link for i in section.items] == [
        reverse("key_request_detail", args=[restricted.pk])
    ]
    # Deciding it again is refused by the queue: it is not in it.
    refused = approver_a_client.post(reverse("approval_decide", args=[restricted.pk]), {"decision": "approve"})
    assert refused.status_code == 404
    assert KeyRequest.objects.get(pk=restricted.pk).status == KeyRequest.Status.PENDING


def test_finance_sees_an_increase_waiting_on_the_home_page(waiting, finance_client):
    home = finance_client.get(reverse("home")).content.decode()
    assert "Nothing is waiting for you" not in home
    assert "Budget increases to decide" in home and "$500.00 more" in home


def test_the_inbox_page_lists_each_item_with_its_link(waiting, admin_client):
    body = admin_client.get(reverse("inbox")).content.decode()
    for heading in ("Key requests to decide", "Failed gateway commands", "Quarantined spend rows", "Unmanaged keys"):
        assert heading in body
    assert reverse("unmanaged_keys") in body


def _grow(team_a, member_a_user, open_model, n):  # noqa: F811
    for _ in range(n):
        KeyRequestFactory(requested_by=member_a_user, team=team_a, requested_models=[open_model])
        VirtualKeyFactory(team=team_a, owner=member_a_user, expires_at=timezone.now() + timedelta(days=2))
        UnmanagedKey.objects.create(token_hash=uuid.uuid4().hex * 2)


@pytest.mark.parametrize("role", ["admin", "member_a"])
def test_the_inbox_reads_a_fixed_number_of_queries(role, world, team_a, member_a_user, open_model):  # noqa: F811
    client = world.client(role)
    sizes = {}
    for n in (2, 12):
        _grow(team_a, member_a_user, open_model, n - sizes.get("done", 0))
        sizes["done"] = n
        client.get(reverse("inbox"))  # the session warmed
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("inbox")).status_code == 200
        sizes[n] = len(captured)
    assert sizes[2] == sizes[12], sizes


@pytest.mark.parametrize("page", ["inbox", "home"])
def test_the_inbox_and_home_pages_count_waiting_items_and_unread_notices_once(page, world):
    """The sections' one counting query also counts the unread notices, and the navigation shows both from it."""
    Notice.objects.create(user=world.users["member_a"], title="Read me")
    Notice.objects.create(user=world.users["member_a"], title="And me")
    client = world.client("member_a")
    client.get(reverse(page))  # the session warmed
    with CaptureQueriesContext(connection) as captured:
        body = client.get(reverse(page)).content.decode()
    assert "Notices (2 unread)" in body
    counting = [q["sql"] for q in captured if "COUNT(*)" in q["sql"] and "budgets_notice" in q["sql"]]
    assert len(counting) == 1, counting


def test_a_person_in_no_team_is_not_offered_a_key_request(db):
    loner = make_user(email="loner@example.com")
    from django.test import Client

    client = Client()
    client.force_login(loner)
    for page in ("home", "key_list"):
        assert reverse("key_request_create") not in client.get(reverse(page)).content.decode(), page


def test_the_navigations_count_follows_new_rows_new_roles_and_the_clock(
    team_a,
    team_b,
    member_a_user,
    member_b_user,
    open_model,  # noqa: F811
):
    """The navigation's SQL is kept per person and roles (govsite.inbox.navigation_counts): rows that arrive
    later, a team role given later and a key that comes within 14 days of expiry by the database's clock all
    count, and the kept SQL of one person never answers for another."""
    from govsite.accounts.models import Membership, TeamRole, User

    lead = make_user(email="lead@example.com", teams={team_a: TeamRole.APPROVER})

    def nav_count(user) -> int:
        fresh = User.objects.get(pk=user.pk)  # a new request's user: roles read again
        return inbox.navigation_counts(user=fresh)[0]

    assert nav_count(lead) == 0
    KeyRequestFactory(requested_by=member_a_user, team=team_a, requested_models=[open_model])
    assert nav_count(lead) == 1  # a row that arrived after the SQL was kept
    KeyRequestFactory(requested_by=member_b_user, team=team_b, requested_models=[open_model])
    assert nav_count(lead) == 1  # team B's is not theirs...
    Membership.objects.create(user=lead, team=team_b, role=TeamRole.APPROVER)
    assert nav_count(lead) == 2  # ...until they approve for team B too
    Membership.objects.filter(user=lead, team=team_b).delete()
    assert nav_count(lead) == 1

    # A key expiring in 20 days is not counted; moved to 10 days from the database's now, it is.
    key = VirtualKeyFactory(team=team_a, owner=lead, expires_at=timezone.now() + timedelta(days=20))
    assert nav_count(lead) == 1
    type(key).objects.filter(pk=key.pk).update(expires_at=timezone.now() + timedelta(days=10))
    assert nav_count(lead) == 2

    # Another approver of team A, with the same roles, gets their own count (their own key is not the lead's).
    other = make_user(email="other-lead@example.com", teams={team_a: TeamRole.APPROVER})
    assert nav_count(other) == 1
    # Their unread notices come in the same query.
    Notice.objects.create(user=other, title="Read me")
    assert inbox.navigation_counts(user=User.objects.get(pk=other.pk)) == (1, 1)


def test_a_queue_that_can_hold_nothing_for_someone_counts_zero(member_a_user, monkeypatch):
    """A provider's queue may be `none()` for a person (its SQL cannot even be written): the one counting query
    counts it as 0 instead of failing, on the inbox and in the navigation."""
    nothing = inbox.Provider(
        "nothing", "Never anything", lambda user: True, lambda user: KeyRequest.objects.none(), inbox._key_request,
        lambda: reverse("approval_queue"),
    )  # fmt: skip
    monkeypatch.setattr(inbox, "PROVIDERS", [*inbox.PROVIDERS, nothing])
    counts = _counts(member_a_user)
    assert counts["nothing"] == 0
    assert inbox.navigation_counts(user=member_a_user) == (sum(counts.values()), 0)
