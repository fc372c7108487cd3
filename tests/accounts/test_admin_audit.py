"""Changes made through Django admin are audited (AuditedModelAdmin); only admins get in; the
audit log itself cannot be edited there."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.chain import verify
from audit.models import AuditEvent
from govsite.accounts.models import OrgRoleGrant, Team
from tests.audit.helpers import actions, new_events, write_events
from tests.factories import TeamFactory, make_user

pytestmark = pytest.mark.django_db

NO_INLINE_ROWS = {
    "memberships-TOTAL_FORMS": "0",
    "memberships-INITIAL_FORMS": "0",
    "memberships-MIN_NUM_FORMS": "0",
    "memberships-MAX_NUM_FORMS": "1000",
}


def team_form(team: Team | None = None, **changes) -> dict:
    data = {
        "name": team.name if team else "Admin-made team",
        "slug": team.slug if team else "admin-made",
        "description": team.description if team else "",
        "cost_centre": team.cost_centre if team else "",
        "slack_webhook_url": "",
        "created_at_0": "2025-01-02",
        "created_at_1": "03:04:05",
        **NO_INLINE_ROWS,
    }
    data.update(changes)
    return data


def test_editing_a_team_in_django_admin_is_audited(admin_client, admin_user):
    team = TeamFactory(name="Payments", slug="payments")
    url = reverse("admin:accounts_team_change", args=[team.pk])
    assert admin_client.get(url).status_code == 200

    with new_events() as events:
        response = admin_client.post(url, team_form(team, description="Cards and wallets"))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert actions(events) == ["admin.team.changed"]
    event = events[0]
    assert (event.actor_id, event.target_type, event.target_id) == (admin_user.pk, "accounts.team", str(team.pk))
    assert event.team_id == team.pk
    assert event.data["via"] == "django-admin"
    assert event.data["after"]["description"] == "Cards and wallets"
    assert "Description" in event.data["message"]
    team.refresh_from_db()
    assert team.description == "Cards and wallets"


def test_adding_a_team_in_django_admin_is_audited(admin_client):
    with new_events() as events:
        response = admin_client.post(reverse("admin:accounts_team_add"), team_form())
    assert response.status_code == 302
    team = Team.objects.get(slug="admin-made")
    assert actions(events) == ["admin.team.created"]
    assert events[0].target_id == str(team.pk)
    assert events[0].data["after"]["name"] == "Admin-made team"


def test_deleting_a_team_in_django_admin_is_audited_with_what_it_was(admin_client):
    team = TeamFactory(name="Short-lived", slug="short-lived")
    with new_events() as events:
        response = admin_client.post(reverse("admin:accounts_team_delete", args=[team.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Team.objects.filter(pk=team.pk).exists()
    assert actions(events) == ["admin.team.deleted"]
    assert events[0].data["before"]["slug"] == "short-lived"


def test_bulk_deleting_teams_in_django_admin_audits_each_one(admin_client):
    teams = [TeamFactory(), TeamFactory()]
    with new_events() as events:
        response = admin_client.post(
            reverse("admin:accounts_team_changelist"),
            {"action": "delete_selected", "_selected_action": [t.pk for t in teams], "post": "yes"},
        )
    assert response.status_code == 302
    assert actions(events) == ["admin.team.deleted", "admin.team.deleted"]
    assert {e.target_id for e in events} == {str(t.pk) for t in teams}


def test_granting_an_org_role_in_django_admin_is_audited(admin_client):
    person = make_user(email="promoted@example.com")
    with new_events() as events:
        response = admin_client.post(
            reverse("admin:accounts_orgrolegrant_add"),
            {
                "user": person.pk,
                "role": "finance",
                "source": "manual",
                "created_at_0": "2025-01-02",
                "created_at_1": "00:00",
            },
        )
    assert response.status_code == 302
    assert OrgRoleGrant.objects.filter(user=person, role="finance").exists()
    assert actions(events) == ["admin.orgrolegrant.created"]


def test_editing_a_person_in_django_admin_is_audited_without_their_password_hash(admin_client):
    person = make_user(email="renamed@example.com", full_name="Old Name", password="a-long-password-123")
    with new_events() as events:
        response = admin_client.post(
            reverse("admin:accounts_user_change", args=[person.pk]),
            {"email": person.email, "full_name": "New Name"},
        )
    assert response.status_code == 302
    assert actions(events) == ["admin.user.changed"]
    assert events[0].data["after"]["full_name"] == "New Name"
    assert "password" not in events[0].data["after"]


def test_django_admin_changes_keep_the_audit_chain_valid(admin_client):
    admin_client.post(reverse("admin:accounts_team_add"), team_form())
    team = Team.objects.get(slug="admin-made")
    admin_client.post(reverse("admin:accounts_team_change", args=[team.pk]), team_form(team, cost_centre="CC-9"))
    admin_client.post(reverse("admin:accounts_team_delete", args=[team.pk]), {"post": "yes"})
    assert list(AuditEvent.objects.order_by("seq").values_list("action", flat=True)) == [
        "admin.team.created",
        "admin.team.changed",
        "admin.team.deleted",
    ]
    assert verify().ok


def test_audit_events_cannot_be_edited_added_or_deleted_in_django_admin(admin_client):
    event = write_events(1)[0]
    change = reverse("admin:audit_auditevent_change", args=[event.pk])
    with new_events() as events:
        assert admin_client.post(change, {"action": "forged"}).status_code == 403
        assert (
            admin_client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code
            == 403
        )
        assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert events == []
    event.refresh_from_db()
    assert event.action == "test.event"


@pytest.mark.parametrize("role", ["finance", "auditor", "approver_a", "member_a"])
def test_only_admins_get_into_django_admin(world, role):
    client = world.client(role)
    response = client.get(reverse("admin:accounts_team_changelist"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert world.client("admin").get(reverse("admin:accounts_team_changelist")).status_code == 200
