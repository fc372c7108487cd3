"""The leaver report: everyone deactivated in a period, each key they held, when it was revoked and the
delay; late or missing revocations fail the check, on the page and in the bundle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit import reports
from audit.period import Period
from govsite.accounts import services as account_services
from keys import services as key_services
from keys.models import KeyKind, VirtualKey
from tests.audit.conftest import build_export, export_path
from tests.factories import VirtualKeyFactory, make_user

pytestmark = pytest.mark.django_db


def today() -> Period:
    day = timezone.now().date()
    return Period(day, day)


def rows_by_key(**kwargs) -> dict:
    return {row["key_alias"]: row for row in reports.leaver_rows(today(), **kwargs)}


def leave(admin, user, reason="left the company"):
    account_services.user_deactivate(actor=admin, user=user, reason=reason)
    user.refresh_from_db()
    return user


def confirm_revocation(key, at):
    VirtualKey.objects.filter(pk=key.pk).update(status=VirtualKey.Status.REVOKED, revoked_at=at)


def test_a_leavers_key_revoked_by_the_next_job_run_passes_with_its_delay(world, admin_user):
    member = world.users["member_a"]
    key = VirtualKeyFactory(team=world.team_a, owner=member, approved_by=world.users["approver_a"])
    three_days_ago = timezone.now() - timedelta(days=3)
    earlier = VirtualKeyFactory(
        team=world.team_a, owner=member, status="revoked", revoke_requested_at=three_days_ago, revoked_at=three_days_ago
    )
    leave(admin_user, member)
    assert key_services.leaver_keys_sweep() == 1
    confirm_revocation(key, member.deactivated_at + timedelta(minutes=3))

    rows = rows_by_key()
    assert set(rows) == {key.alias}  # the key revoked before they left is not theirs to remove
    row = rows[key.alias]
    assert row["person"] == member.email and row["deactivated_by"] == admin_user.email
    assert row["reason"] == "left the company" and row["audit_event_seq"] is not None
    assert row["delay_hours"] == 0.05 and row["check_key_removed_in_time"] == "PASS"
    assert earlier.alias not in rows


def test_a_key_revoked_late_or_still_live_past_the_limit_fails(world, admin_user, settings):
    settings.LEAVER_REVOCATION_SLA_HOURS = 24
    member = world.users["member_a"]
    late = VirtualKeyFactory(team=world.team_a, owner=member)
    live = VirtualKeyFactory(team=world.team_a, owner=member)
    service = VirtualKeyFactory(team=world.team_a, owner=member, kind=KeyKind.SERVICE, service_name="deploy-bot")
    leave(admin_user, member)
    confirm_revocation(late, member.deactivated_at + timedelta(hours=72))

    rows = rows_by_key()  # right after deactivation: nothing is overdue yet
    assert rows[late.alias]["check_key_removed_in_time"] == "FAIL"
    assert rows[late.alias]["check_detail"] == "removed 72.0 h after deactivation"
    assert rows[live.alias]["check_key_removed_in_time"] == "N/A"
    assert rows[service.alias]["check_key_removed_in_time"] == "N/A"

    rows = rows_by_key(now=timezone.now() + timedelta(days=2))
    assert rows[live.alias]["check_key_removed_in_time"] == "FAIL"
    assert rows[live.alias]["check_detail"].startswith("not removed yet")
    assert rows[service.alias]["check_key_removed_in_time"] == "FAIL"
    assert "still owned by the leaver" in rows[service.alias]["check_detail"]


def test_a_leaver_without_keys_is_listed_and_a_deactivation_without_an_event_is_flagged(world, admin_user):
    quiet = make_user(email="quiet@example.com", is_active=False, deactivated_at=timezone.now())
    gone = make_user(email="gone@example.com")
    leave(admin_user, gone)
    rows = list(reports.leaver_rows(today()))
    assert [(row["person"], row["key_alias"]) for row in rows] == [(gone.email, None), (quiet.email, None)]
    assert rows[1]["audit_event_seq"] is None
    key = VirtualKeyFactory(team=world.team_a, owner=quiet, created_at=timezone.now() - timedelta(days=10))
    rows = rows_by_key(now=timezone.now() + timedelta(days=2))
    assert rows[key.alias]["check_detail"].endswith("deactivation has no audit event")


def test_the_leaver_page_and_the_bundle_show_the_same_rows(
    world, admin_user, auditor_client, auditor_user, open_bundle
):
    member = world.users["member_a"]
    key = VirtualKeyFactory(team=world.team_a, owner=member)
    leave(admin_user, member)
    key_services.leaver_keys_sweep()
    confirm_revocation(key, member.deactivated_at + timedelta(minutes=30))
    day = timezone.now().date().isoformat()

    response = auditor_client.get(reverse("leaver_report"), {"period_start": day, "period_end": day})
    html = response.content.decode()
    assert response.status_code == 200
    assert member.email in html and key.alias in html and "0.5" in html and "PASS" in html
    row = open_bundle(export_path(build_export(auditor_user))).csv("leavers")[0]
    assert (row["person"], row["key_alias"], row["delay_hours"]) == (member.email, key.alias, "0.5")


def test_a_bad_period_on_the_leaver_page_is_a_clear_error(auditor_client):
    day = timezone.now().date()
    response = auditor_client.get(
        reverse("leaver_report"),
        {"period_start": day.isoformat(), "period_end": (day - timedelta(days=2)).isoformat()},
    )
    assert response.status_code == 400 and "The period ends before it starts." in response.content.decode()
    response = auditor_client.get(reverse("leaver_report"), {"period_start": "yesterday", "period_end": ""})
    assert response.status_code == 400


def test_the_default_leaver_page_covers_the_last_90_days(auditor_client):
    response = auditor_client.get(reverse("leaver_report"))
    assert response.status_code == 200
    assert response.context["period"] == Period(timezone.now().date() - timedelta(days=89), timezone.now().date())
