"""The audit log page: filters, paging, bad input, and read-only access for auditors."""

from __future__ import annotations

import datetime as dt
import html
import re
from urllib.parse import parse_qs

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

import audit
from audit.models import AuditEvent
from tests.audit.helpers import append_only_bypassed
from tests.permissions import AUDITOR, all_cases

pytestmark = pytest.mark.django_db

URL = reverse("audit_log")


def shown(response) -> list[AuditEvent]:
    assert response.status_code == 200
    return list(response.context["page"].object_list)


def record(action: str, *, actor=None, team=None, actor_label: str = "") -> AuditEvent:
    with transaction.atomic():
        return audit.record(action=action, actor=actor, actor_label=actor_label, team=team)


@pytest.fixture
def events(admin_user, finance_user, team_a, team_b):
    return [
        record("team.created", actor=admin_user, team=team_a),
        record("team.updated", actor=admin_user, team=team_b),
        record("membership.added", actor=finance_user, team=team_a),
        record("user.login_failed", actor_label="stranger@example.com"),
    ]


def test_auditor_reads_the_audit_log_newest_first(auditor_client, events):
    response = auditor_client.get(URL)
    assert [e.seq for e in shown(response)] == [4, 3, 2, 1]
    assert b"membership.added" in response.content


def test_auditor_is_refused_on_every_write_url_and_nothing_is_written(world):
    # An auditor's own API token is the one thing they may make: it is their credential, not governed state.
    write_cases = [case for case in all_cases() if case.is_write and not case.personal]
    assert len(write_cases) >= 10, "the permission table lost its write URLs"
    client = world.client(AUDITOR)
    for case in write_cases:
        before = AuditEvent.objects.count()
        response = case.call(client, world, world.team_a)
        assert response.status_code == 403, f"auditor on {case.id}: {response.status_code}"
        assert AuditEvent.objects.count() == before, f"auditor was refused {case.id} yet events were written"


def test_filter_by_actor_shows_only_that_persons_events(admin_client, events):
    assert [e.action for e in shown(admin_client.get(URL, {"actor": "finance@"}))] == ["membership.added"]
    assert [e.seq for e in shown(admin_client.get(URL, {"actor": "ADMIN@example"}))] == [2, 1]
    assert [e.seq for e in shown(admin_client.get(URL, {"actor": "stranger"}))] == [4]


def test_filter_by_action_prefix_shows_only_matching_actions(admin_client, events):
    assert [e.action for e in shown(admin_client.get(URL, {"action": "team."}))] == ["team.updated", "team.created"]
    assert [e.action for e in shown(admin_client.get(URL, {"action": "user.login_failed"}))] == ["user.login_failed"]


def test_filter_by_team_shows_only_that_teams_events(admin_client, events, team_a, team_b):
    assert [e.seq for e in shown(admin_client.get(URL, {"team": team_a.pk}))] == [3, 1]
    assert [e.seq for e in shown(admin_client.get(URL, {"team": team_b.pk}))] == [2]


def test_filters_combine(admin_client, events, team_a):
    response = admin_client.get(URL, {"actor": "admin@", "action": "team.", "team": team_a.pk})
    assert [e.seq for e in shown(response)] == [1]


@pytest.mark.django_db(transaction=True)  # a superuser back-dates events on a connection of its own
def test_filter_by_date_range_shows_only_events_inside_it(admin_client, events):
    # Backdate two events (the chain breaks, which this page does not care about).
    with append_only_bypassed() as cursor:
        for seq, when in [
            (1, dt.datetime(2024, 1, 10, 12, 0, tzinfo=dt.UTC)),
            (2, dt.datetime(2024, 1, 31, 23, 30, tzinfo=dt.UTC)),
        ]:
            value = connection.ops.adapt_datetimefield_value(when)
            cursor.execute("UPDATE audit_auditevent SET created_at = %s WHERE seq = %s", [value, seq])

    january = {"date_from": "2024-01-01", "date_to": "2024-01-31"}
    assert [e.seq for e in shown(admin_client.get(URL, january))] == [2, 1]
    assert [e.seq for e in shown(admin_client.get(URL, {"date_from": "2024-01-11", "date_to": "2024-01-31"}))] == [2]
    assert [e.seq for e in shown(admin_client.get(URL, {"date_to": "2024-01-30"}))] == [1]

    today = timezone.now().date()
    assert [e.seq for e in shown(admin_client.get(URL, {"date_from": today.isoformat()}))] == [4, 3]
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    assert shown(admin_client.get(URL, {"date_from": tomorrow})) == []


def test_end_date_before_start_date_is_a_field_error_not_a_silent_empty_list(admin_client, events):
    response = admin_client.get(URL, {"date_from": "2024-02-01", "date_to": "2024-01-01"})
    assert response.status_code == 200
    assert response.context["form"].errors == {"date_to": ["The period ends before it starts."]}
    assert b"The period ends before it starts." in response.content
    assert shown(response) == []


def test_unreadable_date_is_a_field_error(admin_client, events):
    response = admin_client.get(URL, {"date_from": "last tuesday"})
    assert list(response.context["form"].errors) == ["date_from"]
    assert b"Enter a valid date." in response.content


def test_audit_log_pages_fifty_events_at_a_time_and_keeps_the_filters(admin_client):
    with transaction.atomic():
        for i in range(120):
            audit.record(action="test.paged", actor_label="tester", data={"i": i})
        audit.record(action="other.event")

    filters = {"action": "test.", "actor": "tester"}
    first = admin_client.get(URL, filters)
    assert [e.seq for e in shown(first)] == list(range(120, 70, -1))
    assert b"Page 1 of 3" in first.content
    older = re.search(r'href="\?([^"]*)">Older', first.content.decode())
    assert older, "no link to the next page"
    assert parse_qs(html.unescape(older.group(1))) == {"action": ["test."], "actor": ["tester"], "page": ["2"]}

    last = admin_client.get(URL, {**filters, "page": 3})
    assert [e.seq for e in shown(last)] == list(range(20, 0, -1))
    assert b"Page 3 of 3" in last.content


def test_audit_log_queries_do_not_grow_with_the_number_of_events(admin_client, team_a, django_assert_max_num_queries):
    with transaction.atomic():
        for i in range(60):
            audit.record(action="test.many", actor_label=f"p{i}@example.com", team=team_a)
    with django_assert_max_num_queries(10):
        response = admin_client.get(URL)
    assert len(shown(response)) == 50
