"""Bad input on the people/teams pages: a field error naming the field, nothing written, nothing audited."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from govsite.accounts import services
from govsite.accounts.models import Membership, OrgRoleGrant, SsoGroupMapping, Team, TeamRole, User
from tests.factories import MembershipFactory, make_user

pytestmark = pytest.mark.django_db

TABLES = (AuditEvent, Team, Membership, User, OrgRoleGrant, SsoGroupMapping)


@contextmanager
def nothing_written():
    before = {model.__name__: model.objects.count() for model in TABLES}
    yield
    after = {model.__name__: model.objects.count() for model in TABLES}
    assert after == before, "bad input wrote rows or audit events"


def field_errors(response) -> dict[str, list[str]]:
    return {field: list(errors) for field, errors in response.context["form"].errors.items()}


def message_texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _described_by(response, name: str) -> list[str]:
    """The ids the field's aria-describedby names (the error and help text it is read with)."""
    tag = re.search(rf'<(?:input|select|textarea)[^>]*name="{name}"[^>]*>', response.content.decode())
    found = re.search(r'aria-describedby="([^"]*)"', tag.group(0)) if tag else None
    return found.group(1).split() if found else []


# --- a team with a duplicate slug -------------------------------------------------------------------


def test_new_team_with_a_taken_slug_shows_a_slug_error(admin_client, team_a):
    with nothing_written():
        response = admin_client.post(reverse("team_create"), {"name": "Another team", "slug": "team-a"})
    assert response.status_code == 200
    assert list(field_errors(response)) == ["slug"]
    assert b'id="id_slug_error"' in response.content  # the error, named by the field's aria-describedby
    assert (
        b'aria-describedby="id_slug_helptext id_slug_error"' in response.content
        or b'aria-describedby="id_slug_error"' in response.content
    )


def test_editing_a_team_to_a_taken_slug_shows_a_slug_error_and_keeps_the_old_slug(admin_client, team_a, team_b):
    with nothing_written():
        response = admin_client.post(reverse("team_edit", args=["team-b"]), {"name": "Team B", "slug": "team-a"})
    assert list(field_errors(response)) == ["slug"]
    team_b.refresh_from_db()
    assert team_b.slug == "team-b"


def test_new_team_with_an_invalid_slug_shows_a_slug_error(admin_client):
    with nothing_written():
        response = admin_client.post(reverse("team_create"), {"name": "Spaces", "slug": "has spaces/slash"})
    assert list(field_errors(response)) == ["slug"]


# --- a membership for a deactivated person -------------------------------------------------------


def test_adding_a_deactivated_person_to_a_team_shows_a_person_error(admin_client, team_a):
    gone = make_user(email="gone@example.com", is_active=False)
    with nothing_written():
        response = admin_client.post(reverse("membership_add", args=["team-a"]), {"user": gone.pk, "role": "member"})
    assert response.status_code == 400
    assert list(field_errors(response)) == ["user"]
    assert "gone@example.com is deactivated" in field_errors(response)["user"][0]
    assert b'id="id_user_error"' in response.content
    assert (
        b'aria-describedby="id_user_error"' in response.content or b"id_user_helptext id_user_error" in response.content
    )


def test_adding_someone_already_in_the_team_shows_the_service_error_on_the_person_field(
    admin_client, team_a, member_a_user
):
    with nothing_written():
        response = admin_client.post(
            reverse("membership_add", args=["team-a"]), {"user": member_a_user.pk, "role": "approver"}
        )
    assert response.status_code == 400
    assert field_errors(response) == {"user": ["member-a@example.com is already in Team A."]}
    assert Membership.objects.get(user=member_a_user, team=team_a).role == TeamRole.MEMBER


def test_service_refuses_a_membership_for_a_deactivated_person(admin_user, team_a):
    gone = make_user(is_active=False)
    with nothing_written(), pytest.raises(ValidationError) as exc:
        services.membership_add(actor=admin_user, team=team_a, user=gone)
    assert list(exc.value.error_dict) == ["user"]


def test_changing_the_role_of_a_deactivated_persons_membership_is_refused(admin_user, team_a):
    membership = MembershipFactory(team=team_a, user=make_user(is_active=False))
    with nothing_written(), pytest.raises(ValidationError) as exc:
        services.membership_change_role(actor=admin_user, membership=membership, role=TeamRole.APPROVER)
    assert list(exc.value.error_dict) == ["user"]


# --- an unknown role ---------------------------------------------------------------------------------


def test_adding_a_member_with_an_unknown_role_shows_a_role_error(admin_client, team_a):
    person = make_user()
    with nothing_written():
        response = admin_client.post(reverse("membership_add", args=["team-a"]), {"user": person.pk, "role": "owner"})
    assert response.status_code == 400
    assert list(field_errors(response)) == ["role"]


def test_setting_an_unknown_team_role_says_which_field_and_changes_nothing(admin_client, team_a, member_a_user):
    membership = Membership.objects.get(user=member_a_user, team=team_a)
    with nothing_written():
        response = admin_client.post(reverse("membership_role", args=["team-a", membership.pk]), {"role": "owner"})
    assert response.status_code == 302
    assert [m for m in message_texts(response) if m.startswith("role: ")], message_texts(response)
    membership.refresh_from_db()
    assert membership.role == TeamRole.MEMBER


def test_granting_an_unknown_org_role_is_refused_and_changes_nothing(admin_client, member_a_user):
    with nothing_written():
        response = admin_client.post(reverse("person_roles", args=[member_a_user.pk]), {"org_roles": ["superuser"]})
    assert response.status_code == 302
    assert any("superuser" in m for m in message_texts(response)), message_texts(response)


def test_sso_mapping_with_an_unknown_team_role_shows_a_team_role_error(admin_client, team_a):
    with nothing_written():
        response = admin_client.post(
            reverse("sso_mappings"), {"group": "eng", "team": team_a.pk, "team_role": "owner", "org_role": ""}
        )
    assert response.status_code == 400
    assert list(field_errors(response)) == ["team_role"]


def test_sso_mapping_to_both_a_team_and_an_org_role_is_refused(admin_client, team_a):
    with nothing_written():
        response = admin_client.post(
            reverse("sso_mappings"), {"group": "eng", "team": team_a.pk, "team_role": "member", "org_role": "admin"}
        )
    assert response.status_code == 400
    assert list(field_errors(response)) == ["org_role"]


def test_duplicate_sso_mapping_shows_a_group_error(admin_client, team_a):
    services.sso_mapping_create(actor=make_user(org_roles=["admin"]), group="eng", team=team_a, team_role="member")
    with nothing_written():
        response = admin_client.post(
            reverse("sso_mappings"), {"group": "eng", "team": team_a.pk, "team_role": "approver", "org_role": ""}
        )
    assert response.status_code == 400
    assert field_errors(response) == {"group": ["This group already has that mapping."]}


def test_duplicate_org_role_sso_mapping_shows_a_group_error(admin_client):
    services.sso_mapping_create(actor=make_user(org_roles=["admin"]), group="fin", org_role="finance")
    with nothing_written():
        response = admin_client.post(
            reverse("sso_mappings"), {"group": "fin", "team": "", "team_role": "", "org_role": "finance"}
        )
    assert response.status_code == 400
    assert field_errors(response) == {"group": ["This group already has that mapping."]}


def test_same_group_may_map_to_a_second_team(admin_client, team_a, team_b):
    services.sso_mapping_create(actor=make_user(org_roles=["admin"]), group="eng", team=team_a, team_role="member")
    response = admin_client.post(
        reverse("sso_mappings"), {"group": "eng", "team": team_b.pk, "team_role": "member", "org_role": ""}
    )
    assert response.status_code == 302
    assert SsoGroupMapping.objects.filter(group="eng").count() == 2


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda admin, team, person: services.membership_add(actor=admin, team=team, user=person, role="owner"),
            "role",
        ),
        (
            lambda admin, team, person: services.user_set_org_roles(actor=admin, user=person, roles=["root"]),
            "org_roles",
        ),
        (
            lambda admin, team, person: services.sso_mapping_create(
                actor=admin, group="g", team=team, team_role="owner"
            ),
            "team_role",
        ),
        (lambda admin, team, person: services.sso_mapping_create(actor=admin, group="g", org_role="root"), "org_role"),
    ],
    ids=["membership", "org-role", "sso-team-role", "sso-org-role"],
)
def test_services_refuse_an_unknown_role_naming_the_field(admin_user, team_a, call, field):
    person = make_user()
    with nothing_written(), pytest.raises(ValidationError) as exc:
        call(admin_user, team_a, person)
    assert list(exc.value.error_dict) == [field]


# --- other bad input -------------------------------------------------------------------------------


def test_adding_a_person_whose_email_exists_shows_an_email_error(admin_client, member_a_user):
    with nothing_written():
        response = admin_client.post(reverse("person_create"), {"email": "Member-A@Example.com"})
    assert list(field_errors(response)) == ["email"]


def test_admin_deactivating_themselves_sees_an_error_and_stays_active(admin_client, admin_user):
    with nothing_written():
        response = admin_client.post(reverse("person_deactivate", args=[admin_user.pk]), {"confirm": "on"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["You cannot deactivate yourself."]
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_deactivating_without_ticking_confirm_shows_a_confirm_error(admin_client, member_a_user):
    with nothing_written():
        response = admin_client.post(reverse("person_deactivate", args=[member_a_user.pk]), {"reason": "x"})
    assert list(field_errors(response)) == ["confirm"]
    member_a_user.refresh_from_db()
    assert member_a_user.is_active
