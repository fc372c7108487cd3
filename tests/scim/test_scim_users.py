"""SCIM Users: an identity provider creates, changes and deactivates people; malformed input writes nothing.

Calls go through the real URL routing and views with a bearer token (no session, CSRF checks on);
every write goes through the accounts services and is audited as "scim:<token name>".
"""

from __future__ import annotations

from datetime import UTC

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from govsite.accounts import services
from govsite.accounts.models import OrgRole, Source, TeamRole, User
from govsite.cron import SCHEDULES
from keys import jobs as key_jobs
from keys import services as key_services
from keys.models import VirtualKey
from tests.factories import make_user
from tests.keys.conftest import chat, request_input
from tests.scim.conftest import LIST_SCHEMA, USER_SCHEMA, ScimClient, patch_body, user_body
from tests.scim.helpers import ACTOR, assert_scim_error, create_user, memberships, snapshot

pytestmark = pytest.mark.django_db


# --- users --------------------------------------------------------------------------------------------------


def test_create_a_user(scim):
    response = scim.post(
        "Users",
        user_body(
            "Ann.Example@Example.com",
            name={"givenName": "Ann", "familyName": "Example"},
            displayName="Ann E.",
            externalId="00u1abc",
            emails=[{"value": "Ann.Example@Example.com", "primary": True, "type": "work"}],
            title="Engineer",  # kept as sent, as every attribute of the schema
            password="1mz050nq",  # Okta's, when it syncs passwords: not in the schema, ignored
            active=True,
        ),
    )

    assert response.status == 201, response
    body = response.body
    ann = User.objects.get(email="ann.example@example.com")
    assert body["id"] == str(ann.pk)
    assert response.headers["Location"] == f"http://testserver/scim/v2/Users/{ann.pk}"
    assert body["meta"]["location"] == response.headers["Location"]
    assert body["userName"] == "ann.example@example.com"
    assert body["name"] == {"givenName": "Ann", "familyName": "Example"}
    assert (body["displayName"], body["title"]) == ("Ann E.", "Engineer")
    assert body["externalId"] == "00u1abc"
    assert body["active"] is True
    assert body["emails"] == [{"value": "Ann.Example@Example.com", "primary": True, "type": "work"}]
    assert "password" not in body and "password" not in ann.scim_attributes
    assert (ann.full_name, ann.scim_external_id, ann.is_active) == ("Ann Example", "00u1abc", True)
    assert not ann.has_usable_password()
    created = AuditEvent.objects.get(action="user.created", target_id=str(ann.pk))
    assert created.actor_label == ACTOR and created.actor_id is None
    assert created.data == {
        "email": "ann.example@example.com",
        "full_name": "Ann Example",
        "external_id": "00u1abc",
        "via": "scim",
    }


def test_a_user_created_inactive_is_deactivated_at_once(scim):
    response = scim.post("Users", user_body("not-yet@example.com", active=False))
    assert response.status == 201 and response.body["active"] is False
    person = User.objects.get(email="not-yet@example.com")
    assert not person.is_active and person.deactivated_at is not None
    assert AuditEvent.objects.get(action="user.deactivated", target_id=str(person.pk)).actor_label == ACTOR


def test_creating_an_existing_user_is_a_409_and_changes_nothing(scim, member_a_user):
    before = snapshot()
    response = scim.post("Users", user_body(member_a_user.email.upper(), name={"formatted": "Someone Else"}))
    assert_scim_error(response, 409, "uniqueness")
    assert snapshot() == before


def test_get_a_user_and_a_missing_user(scim, member_a_user):
    response = scim.get(f"Users/{member_a_user.pk}")
    assert response.status == 200
    assert response.body["userName"] == member_a_user.email
    assert response.body["schemas"] == [USER_SCHEMA]
    assert_scim_error(scim.get("Users/987654321"), 404)
    assert_scim_error(scim.get("Users/not-a-number"), 404)


def test_filter_users_by_username_is_case_insensitive(scim, member_a_user, member_b_user):
    response = scim.get("Users", filter=f'userName eq "{member_a_user.email.upper()}"')
    assert response.status == 200
    assert response.body["schemas"] == [LIST_SCHEMA]
    assert response.body["totalResults"] == 1
    assert [r["id"] for r in response.body["Resources"]] == [str(member_a_user.pk)]
    nobody = scim.get("Users", filter='userName eq "nobody@example.com"')
    assert nobody.body["totalResults"] == 0 and nobody.body["Resources"] == []


def test_filter_users_by_external_id(scim):
    person = create_user(scim, "ext@example.com", externalId="abc-123")
    response = scim.get("Users", filter='externalId eq "abc-123"')
    assert [r["id"] for r in response.body["Resources"]] == [str(person.pk)]


@pytest.mark.parametrize(
    "expression",
    ['userName co "ann"', 'userName eq "a" or userName eq "b"', "userName eq", '(userName eq "a")', 'title eq "x"'],
)
def test_an_unsupported_filter_is_a_400_invalid_filter(scim, expression):
    assert_scim_error(scim.get("Users", filter=expression), 400, "invalidFilter")


def test_users_are_listed_in_pages(scim, world):
    first = scim.get("Users", startIndex=1, count=2)
    assert first.body["totalResults"] == User.objects.count() == 6
    assert (first.body["startIndex"], first.body["itemsPerPage"]) == (1, 2)
    rest = scim.get("Users", startIndex=3, count=10)
    assert rest.body["itemsPerPage"] == 4
    ids = [r["id"] for r in first.body["Resources"] + rest.body["Resources"]]
    assert ids == [str(pk) for pk in User.objects.order_by("pk").values_list("pk", flat=True)]
    assert scim.get("Users", count=0).body["Resources"] == []


def test_put_replaces_the_user(scim):
    person = create_user(scim, "bo@example.com", name={"formatted": "Bo"}, externalId="x1")
    EmailAddress.objects.create(user=person, email="bo@example.com", verified=True, primary=True)  # an SSO login's
    response = scim.put(
        f"Users/{person.pk}", user_body("bo.new@example.com", name={"givenName": "Bo", "familyName": "Bright"})
    )
    assert response.status == 200, response
    person.refresh_from_db()
    assert (person.email, person.full_name, person.scim_external_id) == ("bo.new@example.com", "Bo Bright", "")
    assert person.is_active  # PUT without "active" leaves it as it is
    updated = AuditEvent.objects.get(action="user.updated", target_id=str(person.pk))
    assert updated.actor_label == ACTOR
    assert updated.data["changes"] == {
        "email": {"before": "bo@example.com", "after": "bo.new@example.com"},
        "full_name": {"before": "Bo", "after": "Bo Bright"},
        "scim_external_id": {"before": "x1", "after": ""},
        "scim_attributes": ["name"],  # which of the kept attributes changed, not their values
    }
    assert scim.get(f"Users/{person.pk}").body["name"] == {"givenName": "Bo", "familyName": "Bright"}
    # The old address no longer signs anyone in here (it may be given to someone else one day).
    assert updated.data["sign_in_emails_removed"] == ["bo@example.com"]
    assert not EmailAddress.objects.filter(email="bo@example.com").exists()


def test_put_onto_another_persons_email_is_a_409(scim, member_a_user):
    person = create_user(scim, "cy@example.com")
    before = snapshot()
    assert_scim_error(scim.put(f"Users/{person.pk}", user_body(member_a_user.email)), 409, "uniqueness")
    assert snapshot() == before


def test_patch_changes_names_entra_and_okta_style(scim):
    person = create_user(scim, "di@example.com", name={"givenName": "Di", "familyName": "Old"})
    response = scim.patch(
        f"Users/{person.pk}",
        patch_body(
            {"op": "Replace", "path": "name.familyName", "value": "New"},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "ignored@example.com"},
            {
                "op": "add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "value": "R&D",
            },
        ),
    )
    assert response.status == 200, response
    person.refresh_from_db()
    assert (person.full_name, person.email) == ("Di New", "di@example.com")
    scim.patch(f"Users/{person.pk}", patch_body({"op": "replace", "value": {"name": {"formatted": "Diana New"}}}))
    person.refresh_from_db()
    assert person.full_name == "Diana New"


def test_patch_active_false_deactivates_and_ends_the_persons_sessions(scim, member_a_user, team_a):
    browser = Client()
    browser.force_login(member_a_user)
    assert browser.get(reverse("home")).status_code == 200

    # Entra ID sends the boolean as a string.
    response = scim.patch(
        f"Users/{member_a_user.pk}", patch_body({"op": "Replace", "path": "active", "value": "False"})
    )

    assert response.status == 200, response
    assert response.body["active"] is False
    member_a_user.refresh_from_db()
    assert not member_a_user.is_active and member_a_user.deactivated_at is not None
    assert browser.get(reverse("home")).status_code == 302  # signed out at once
    event = AuditEvent.objects.get(action="user.deactivated", target_id=str(member_a_user.pk))
    assert event.actor_label == ACTOR
    assert event.data == {"reason": "deactivated through SCIM (active: false)"}
    # Team memberships stay for the record (the leaver report lists the person's teams and keys).
    assert memberships(member_a_user) == {"team-a": (TeamRole.MEMBER, Source.MANUAL)}


def test_patch_active_true_reactivates(scim):
    person = create_user(scim, "el@example.com", active=False)
    response = scim.patch(f"Users/{person.pk}", patch_body({"op": "replace", "value": {"active": True}}))
    assert response.status == 200 and response.body["active"] is True
    person.refresh_from_db()
    assert person.is_active and person.deactivated_at is None
    assert AuditEvent.objects.get(action="user.reactivated", target_id=str(person.pk)).actor_label == ACTOR


def test_delete_deactivates_and_never_deletes(scim, member_b_user):
    response = scim.delete(f"Users/{member_b_user.pk}")
    assert response.status == 204
    member_b_user.refresh_from_db()
    assert not member_b_user.is_active and member_b_user.scim_deleted_at is not None
    # To the identity provider the person is gone ...
    assert_scim_error(scim.get(f"Users/{member_b_user.pk}"), 404)
    assert scim.get("Users", filter=f'userName eq "{member_b_user.email}"').body["totalResults"] == 0
    # ... in govsite they are deactivated, with the events the leaver report reads.
    event = AuditEvent.objects.get(action="user.deactivated", target_id=str(member_b_user.pk))
    assert (event.actor_label, event.data) == (ACTOR, {"reason": "deleted through SCIM (DELETE /Users)"})
    deleted = AuditEvent.objects.get(action="user.scim_deleted", target_id=str(member_b_user.pk))
    assert deleted.data == {"email": member_b_user.email, "provisioning": 1, "groups_left": []}
    before = snapshot()
    assert_scim_error(scim.delete(f"Users/{member_b_user.pk}"), 404)  # again: no such resource, nothing written
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_a_scim_deactivation_revokes_the_keys_in_the_next_job_run_and_shows_in_the_leaver_report(
    live_gateway, team_a, member_a_user, approver_a_user, admin_user, open_model
):
    request = key_services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model]))
    key = key_services.key_request_approve(request=request, approver=approver_a_user)
    key.refresh_from_db()
    assert key.status == VirtualKey.Status.ACTIVE
    secret = key_services.key_reveal(key=key, actor=member_a_user)
    assert chat(live_gateway.url, secret).status_code == 200
    _, token_secret = services.scim_token_create(actor=admin_user, name="okta")

    response = ScimClient(token_secret).patch(
        f"Users/{member_a_user.pk}", patch_body({"op": "replace", "path": "active", "value": False})
    )
    assert response.status == 200, response
    member_a_user.refresh_from_db()
    assert member_a_user.deactivated_at is not None

    # The leaver report lists the person at once, with the key still live until the job runs.
    auditor = make_user(email="auditor@example.com", org_roles=[OrgRole.AUDITOR])
    (before,) = leaver_report_rows(auditor, member_a_user)
    assert (before["key_alias"], before["key_status_now"], before["ended_at"]) == (key.alias, "active", None)
    assert before["check_key_removed_in_time"] == "N/A" and "not removed yet" in before["check_detail"]
    assert chat(live_gateway.url, secret).status_code == 200

    # The next run of the job rqcron runs every minute (govsite/cron.py).
    assert {"func": key_jobs.revoke_leaver_keys, "interval": 60} in SCHEDULES
    assert key_jobs.revoke_leaver_keys() == 1
    key.refresh_from_db()
    assert key.status == VirtualKey.Status.REVOKED
    assert key.revoke_reason == "owner deactivated (leaver)"
    assert key.revoked_at > member_a_user.deactivated_at
    assert chat(live_gateway.url, secret).status_code == 401
    deactivated = AuditEvent.objects.get(action="user.deactivated", target_id=str(member_a_user.pk))
    assert deactivated.actor_label == ACTOR
    assert AuditEvent.objects.filter(action="key.revoked_leaver", target_id=str(key.pk)).exists()

    # ... and the leaver report shows who deactivated the person, the key revoked, and the check passed.
    (after,) = leaver_report_rows(auditor, member_a_user)
    assert after["deactivated_by"] == ACTOR
    assert after["reason"] == "deactivated through SCIM (active: false)"
    assert after["audit_event_seq"] == deactivated.seq
    assert (after["key_alias"], after["key_status_now"]) == (key.alias, "revoked")
    assert after["ended_at"] == key.revoked_at.astimezone(UTC).isoformat(timespec="microseconds")
    assert after["check_key_removed_in_time"] == "PASS", after
    assert key_jobs.revoke_leaver_keys() == 0  # the run after finds nothing left to do


def leaver_report_rows(viewer: User, leaver: User) -> list[dict]:
    """The leaver report page (/audit/leavers/, its default 90 days) as `viewer` sees it: the rows about `leaver`."""
    browser = Client()
    browser.force_login(viewer)
    response = browser.get(reverse("leaver_report"))
    assert response.status_code == 200
    html = response.content.decode()
    rows = [row for row in response.context["page"].object_list if row["person"] == leaver.email]
    for row in rows:
        assert leaver.email in html and row["key_alias"] in html
        if row["check_key_removed_in_time"] == "PASS":
            assert ">PASS<" in html
    return rows


# --- malformed input: a 400 with the SCIM error, and nothing written ------------------------------------------


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"userName": "no-schemas@example.com"}, "invalidSyntax"),
        ({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "x@example.com"}, "invalidSyntax"),
        (user_body(None), "invalidValue"),
        (user_body(42), "invalidValue"),
        (user_body("not an email"), "invalidValue"),
        (user_body("ok@example.com", active="maybe"), "invalidValue"),
        (user_body("ok@example.com", name="Ann"), "invalidValue"),
        (user_body("ok@example.com", externalId=["a"]), "invalidValue"),
        (["a", "list"], "invalidSyntax"),
    ],
    ids=lambda v: str(v)[:40] if not isinstance(v, str) else v,
)
def test_a_malformed_user_is_refused_with_400_and_nothing_written(scim, body, scim_type):
    before = snapshot()
    assert_scim_error(scim.post("Users", body), 400, scim_type)
    assert snapshot() == before


def test_a_body_that_is_not_json_is_refused(scim, member_a_user):
    before = snapshot()
    assert_scim_error(scim.post("Users", raw='{"userName": '), 400, "invalidSyntax")
    assert_scim_error(scim.put(f"Users/{member_a_user.pk}", raw="nope"), 400, "invalidSyntax")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("operations", "scim_type"),
    [
        ([], "invalidSyntax"),
        ([{"op": "delete", "path": "active"}], "invalidSyntax"),
        ([{"op": "replace", "path": "active", "value": "perhaps"}], "invalidValue"),
        ([{"op": "replace", "path": "name..givenName", "value": "x"}], "invalidPath"),
        ([{"op": "remove", "path": "userName"}], "mutability"),
        ([{"op": "remove"}], "noTarget"),
        ([{"op": "replace", "value": "not an object"}], "invalidValue"),
        # The first operation is valid: the whole PATCH still changes nothing.
        (
            [{"op": "replace", "path": "active", "value": False}, {"op": "replace", "path": "userName", "value": 7}],
            "invalidValue",
        ),
    ],
)
def test_a_malformed_patch_is_refused_with_400_and_nothing_written(scim, member_a_user, operations, scim_type):
    before = snapshot()
    assert_scim_error(scim.patch(f"Users/{member_a_user.pk}", patch_body(*operations)), 400, scim_type)
    assert snapshot() == before
    member_a_user.refresh_from_db()
    assert member_a_user.is_active
