"""SCIM 2.0 provisioning: an identity provider creates, changes and deactivates people and pushes groups.

Calls go through the real URL routing and views with a bearer token (no session, CSRF checks on);
every write goes through services.py and is audited as "scim:<token name>".
"""

from __future__ import annotations

import io
from datetime import UTC

import pytest
from allauth.account.models import EmailAddress
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from govsite.accounts import services
from govsite.accounts.models import Membership, OrgRole, OrgRoleGrant, ScimGroup, ScimToken, Source, TeamRole, User
from govsite.cron import SCHEDULES
from keys import jobs as key_jobs
from keys import services as key_services
from keys.models import VirtualKey
from tests.factories import MembershipFactory, SsoGroupMappingFactory, make_user
from tests.keys.conftest import chat, request_input
from tests.scim.conftest import (
    ERROR_SCHEMA,
    LIST_SCHEMA,
    USER_SCHEMA,
    ScimClient,
    group_body,
    patch_body,
    user_body,
)

pytestmark = pytest.mark.django_db

ACTOR = "scim:okta"


def memberships(user: User) -> dict[str, tuple[str, str]]:
    return {m.team.slug: (m.role, m.source) for m in Membership.objects.filter(user=user).select_related("team")}


def org_roles(user: User) -> dict[str, str]:
    return dict(OrgRoleGrant.objects.filter(user=user).values_list("role", "source"))


def assert_scim_error(response, status: int, scim_type: str = ""):
    assert response.status == status, response
    assert response.body["schemas"] == [ERROR_SCHEMA]
    assert response.body["status"] == str(status)
    assert response.body["detail"]
    if scim_type:
        assert response.body.get("scimType") == scim_type, response


def snapshot() -> tuple[int, ...]:
    """Everything a SCIM write could touch: nothing of it may change on a refused or malformed call."""
    return (
        User.objects.count(),
        User.objects.filter(is_active=False).count(),
        ScimGroup.objects.count(),
        Membership.objects.count(),
        OrgRoleGrant.objects.count(),
        AuditEvent.objects.count(),
        sum(len(g.members.all()) for g in ScimGroup.objects.prefetch_related("members")),
        hash(tuple(User.objects.order_by("pk").values_list("email", "full_name", "scim_external_id"))),
    )


@pytest.fixture
def mappings(team_a, team_b):
    SsoGroupMappingFactory(group="Engineering A", team=team_a, team_role=TeamRole.MEMBER)
    SsoGroupMappingFactory(group="Engineering A leads", team=team_a, team_role=TeamRole.APPROVER)
    SsoGroupMappingFactory(group="Engineering B", team=team_b, team_role=TeamRole.MEMBER)
    SsoGroupMappingFactory(group="Finance", team=None, team_role="", org_role=OrgRole.FINANCE)


def create_user(scim, email: str, **extra) -> User:
    response = scim.post("Users", user_body(email, **extra))
    assert response.status == 201, response
    return User.objects.get(pk=int(response.body["id"]))


# --- discovery ------------------------------------------------------------------------------------------


def test_service_provider_config_says_what_is_supported(scim):
    response = scim.get("ServiceProviderConfig")
    assert response.status == 200
    body = response.body
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert body["patch"] == {"supported": True}
    assert body["filter"]["supported"] is True
    assert body["bulk"]["supported"] is False
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_schemas_and_resource_types_describe_users_and_groups(scim):
    schemas = scim.get("Schemas")
    assert schemas.status == 200 and schemas.body["schemas"] == [LIST_SCHEMA]
    ids = {s["id"] for s in schemas.body["Resources"]}
    assert ids == {USER_SCHEMA, "urn:ietf:params:scim:schemas:core:2.0:Group"}
    user_schema = scim.get(f"Schemas/{USER_SCHEMA}")
    assert {a["name"] for a in user_schema.body["attributes"]} >= {"userName", "name", "active", "externalId"}
    types = scim.get("ResourceTypes")
    assert {(t["name"], t["endpoint"]) for t in types.body["Resources"]} == {("User", "/Users"), ("Group", "/Groups")}
    assert scim.get("ResourceTypes/Group").body["schema"] == "urn:ietf:params:scim:schemas:core:2.0:Group"
    assert_scim_error(scim.get("ResourceTypes/Printer"), 404)


# --- the bearer token -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["Users", "Users/1", "Groups", "ServiceProviderConfig", "Schemas", "ResourceTypes", "Groups/1"]
)
def test_every_endpoint_refuses_a_call_without_a_token(path, scim_token):
    response = ScimClient(None).get(path)
    assert_scim_error(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="govsite-scim"'


def test_a_wrong_token_gets_401_and_writes_nothing(scim_token):
    before = snapshot()
    response = ScimClient("scim_not-a-real-token").post("Users", user_body("mallory@example.com"))
    assert_scim_error(response, 401)
    assert snapshot() == before


def test_a_signed_in_admins_session_is_not_a_scim_credential(admin_client, scim_token):
    response = admin_client.get("/scim/v2/Users")
    assert response.status_code == 401
    assert response.json()["schemas"] == [ERROR_SCHEMA]


def test_a_revoked_token_is_refused_and_the_attempt_audited(admin_user, scim_token, scim):
    token, _ = scim_token
    services.scim_token_revoke(actor=admin_user, token=token)
    before = User.objects.count()
    response = scim.post("Users", user_body("late@example.com"))
    assert_scim_error(response, 401)
    assert "revoked" in response.body["detail"]
    assert User.objects.count() == before
    refused = AuditEvent.objects.get(action="scim_token.refused")
    assert refused.actor_label == ACTOR
    assert refused.data == {"reason": "revoked", "method": "POST", "path": "/scim/v2/Users"}


def test_a_token_records_when_it_was_last_used(scim_token, scim):
    token, _ = scim_token
    assert token.last_used_at is None
    scim.get("Users")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_an_unsupported_method_is_a_scim_error(scim):
    assert_scim_error(scim.call("DELETE", "Users"), 405)
    assert_scim_error(scim.call("PATCH", "ServiceProviderConfig"), 405)


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
            title="Engineer",  # not kept, not refused
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
    assert body["name"] == {"formatted": "Ann Example"}
    assert body["externalId"] == "00u1abc"
    assert body["active"] is True
    assert body["emails"] == [{"value": "ann.example@example.com", "type": "work", "primary": True}]
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
    }
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
    assert not member_b_user.is_active
    assert scim.get(f"Users/{member_b_user.pk}").body["active"] is False
    event = AuditEvent.objects.get(action="user.deactivated", target_id=str(member_b_user.pk))
    assert (event.actor_label, event.data) == (ACTOR, {"reason": "deleted through SCIM"})
    assert scim.delete(f"Users/{member_b_user.pk}").status == 204  # again: nothing more to do, nothing audited
    assert AuditEvent.objects.filter(action="user.deactivated", target_id=str(member_b_user.pk)).count() == 1


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


# --- groups ------------------------------------------------------------------------------------------------


def test_a_pushed_group_gives_its_members_what_its_name_maps_to(scim, mappings, member_b_user):
    ann = create_user(scim, "ann@example.com")
    bob = create_user(scim, "bob@example.com")

    response = scim.post("Groups", group_body("Engineering A", ann.pk, bob.pk, externalId="grp-1"))

    assert response.status == 201, response
    group = ScimGroup.objects.get(display_name="Engineering A")
    assert response.body["id"] == str(group.pk)
    assert response.headers["Location"].endswith(f"/scim/v2/Groups/{group.pk}")
    assert sorted(m["value"] for m in response.body["members"]) == sorted([str(ann.pk), str(bob.pk)])
    assert memberships(ann) == memberships(bob) == {"team-a": (TeamRole.MEMBER, Source.SCIM)}
    created = AuditEvent.objects.get(action="scim_group.created")
    assert created.actor_label == ACTOR
    assert created.data["members"] == ["ann@example.com", "bob@example.com"]
    added = AuditEvent.objects.filter(action="membership.added", data__source="scim")
    assert {e.actor_label for e in added} == {ACTOR} and added.count() == 2
    # The user resource lists its groups.
    assert scim.get(f"Users/{ann.pk}").body["groups"][0]["display"] == "Engineering A"


def test_an_org_role_group_and_the_higher_of_two_team_roles(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    scim.post("Groups", group_body("Engineering A", ann.pk))
    scim.post("Groups", group_body("Engineering A leads", ann.pk))
    scim.post("Groups", group_body("Finance", ann.pk))
    assert memberships(ann) == {"team-a": (TeamRole.APPROVER, Source.SCIM)}
    assert org_roles(ann) == {OrgRole.FINANCE: Source.SCIM}

    leads = ScimGroup.objects.get(display_name="Engineering A leads")
    response = scim.patch(f"Groups/{leads.pk}", patch_body({"op": "remove", "path": f'members[value eq "{ann.pk}"]'}))
    assert response.status == 200, response
    assert memberships(ann) == {"team-a": (TeamRole.MEMBER, Source.SCIM)}
    changed = AuditEvent.objects.filter(action="membership.role_changed").latest("seq")
    assert (changed.actor_label, changed.data["before"], changed.data["after"]) == (ACTOR, "approver", "member")


def test_patch_members_add_and_remove_entra_style(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    bob = create_user(scim, "bob@example.com")
    group_id = scim.post("Groups", group_body("Engineering B")).body["id"]

    response = scim.patch(
        f"Groups/{group_id}",
        patch_body({"op": "Add", "path": "members", "value": [{"value": str(ann.pk)}, {"value": str(bob.pk)}]}),
    )
    assert response.status == 200, response
    assert memberships(ann) == memberships(bob) == {"team-b": (TeamRole.MEMBER, Source.SCIM)}

    scim.patch(f"Groups/{group_id}", patch_body({"op": "Remove", "path": "members", "value": [{"value": str(bob.pk)}]}))
    assert memberships(bob) == {}
    assert memberships(ann) == {"team-b": (TeamRole.MEMBER, Source.SCIM)}
    removed = AuditEvent.objects.get(action="membership.removed")
    assert removed.actor_label == ACTOR
    assert removed.data["reason"] == "no longer in a SCIM group that grants it"
    updated = AuditEvent.objects.filter(action="scim_group.updated").latest("seq")
    assert updated.data["changes"] == {"members_removed": ["bob@example.com"]}


def test_scim_groups_leave_manual_and_sso_grants_alone(scim, mappings, team_a, team_b):
    ann = create_user(scim, "ann@example.com")
    MembershipFactory(user=ann, team=team_a, role=TeamRole.APPROVER, source=Source.MANUAL)
    MembershipFactory(user=ann, team=team_b, role=TeamRole.MEMBER, source=Source.SSO)

    group_a = scim.post("Groups", group_body("Engineering A", ann.pk)).body["id"]
    group_b = scim.post("Groups", group_body("Engineering B", ann.pk)).body["id"]
    assert memberships(ann) == {"team-a": (TeamRole.APPROVER, Source.MANUAL), "team-b": (TeamRole.MEMBER, Source.SSO)}

    assert scim.delete(f"Groups/{group_a}").status == 204
    assert scim.delete(f"Groups/{group_b}").status == 204
    assert memberships(ann) == {"team-a": (TeamRole.APPROVER, Source.MANUAL), "team-b": (TeamRole.MEMBER, Source.SSO)}


def test_put_replaces_members_and_a_rename_remaps_everyone(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    bob = create_user(scim, "bob@example.com")
    group_id = scim.post("Groups", group_body("Engineering A", ann.pk)).body["id"]

    response = scim.put(f"Groups/{group_id}", group_body("Engineering B", ann.pk, bob.pk))

    assert response.status == 200, response
    assert response.body["displayName"] == "Engineering B"
    assert memberships(ann) == memberships(bob) == {"team-b": (TeamRole.MEMBER, Source.SCIM)}
    updated = AuditEvent.objects.filter(action="scim_group.updated").latest("seq")
    assert updated.data["changes"] == {
        "display_name": {"before": "Engineering A", "after": "Engineering B"},
        "members_added": ["bob@example.com"],
    }

    # Okta renames with a replace without a path.
    scim.patch(f"Groups/{group_id}", patch_body({"op": "replace", "value": {"id": group_id, "displayName": "Finance"}}))
    assert memberships(ann) == {}
    assert org_roles(ann) == org_roles(bob) == {OrgRole.FINANCE: Source.SCIM}


def test_delete_a_group_removes_what_it_granted(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    group_id = scim.post("Groups", group_body("Finance", ann.pk)).body["id"]
    assert org_roles(ann) == {OrgRole.FINANCE: Source.SCIM}

    assert scim.delete(f"Groups/{group_id}").status == 204

    assert not ScimGroup.objects.exists()
    assert org_roles(ann) == {}
    assert AuditEvent.objects.get(action="scim_group.deleted").data == {
        "display_name": "Finance",
        "members": ["ann@example.com"],
    }
    revoked = AuditEvent.objects.get(action="user.org_role_revoked")
    assert revoked.actor_label == ACTOR
    assert_scim_error(scim.get(f"Groups/{group_id}"), 404)


def test_a_deactivated_persons_groups_grant_nothing_until_they_are_reactivated(scim, mappings):
    ann = create_user(scim, "ann@example.com", active=False)
    scim.post("Groups", group_body("Engineering A", ann.pk))
    assert memberships(ann) == {}

    scim.patch(f"Users/{ann.pk}", patch_body({"op": "replace", "path": "active", "value": True}))

    assert memberships(ann) == {"team-a": (TeamRole.MEMBER, Source.SCIM)}


def test_groups_are_filtered_by_display_name_and_member(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    group_id = scim.post("Groups", group_body("Engineering A", ann.pk)).body["id"]
    scim.post("Groups", group_body("Engineering B"))

    by_name = scim.get("Groups", filter='displayName eq "Engineering A"')
    assert [g["id"] for g in by_name.body["Resources"]] == [group_id]
    # Entra ID checks a membership like this.
    member_check = scim.get(
        "Groups", filter=f'id eq "{group_id}" and members[value eq "{ann.pk}"]', excludedAttributes="members"
    )
    assert member_check.body["totalResults"] == 1
    assert "members" not in member_check.body["Resources"][0]
    assert scim.get("Groups", filter=f'members[value eq "{ann.pk + 1000}"]').body["totalResults"] == 0
    assert scim.get("Groups").body["totalResults"] == 2


def test_a_second_group_with_the_same_name_is_a_409(scim, mappings):
    scim.post("Groups", group_body("Engineering A"))
    before = snapshot()
    assert_scim_error(scim.post("Groups", group_body("Engineering A")), 409, "uniqueness")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"displayName": "No schemas"}, "invalidSyntax"),
        (group_body(""), "invalidValue"),
        ({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}, "invalidValue"),
        (group_body("Bad members", "abc"), "invalidValue"),
        (group_body("Unknown member", 987654321), "invalidValue"),
        ({**group_body("Members not a list"), "members": {"value": "1"}}, "invalidValue"),
    ],
    ids=["no-schemas", "empty-name", "no-name", "non-numeric-member", "unknown-member", "members-object"],
)
def test_a_malformed_group_is_refused_with_400_and_nothing_written(scim, mappings, body, scim_type):
    before = snapshot()
    assert_scim_error(scim.post("Groups", body), 400, scim_type)
    assert snapshot() == before


def test_a_group_patch_naming_an_unknown_member_changes_nothing(scim, mappings):
    ann = create_user(scim, "ann@example.com")
    group_id = scim.post("Groups", group_body("Engineering A", ann.pk)).body["id"]
    before = snapshot()
    response = scim.patch(
        f"Groups/{group_id}",
        patch_body(
            {"op": "remove", "path": f'members[value eq "{ann.pk}"]'},
            {"op": "add", "path": "members", "value": [{"value": "987654321"}]},
        ),
    )
    assert_scim_error(response, 400, "invalidValue")
    assert snapshot() == before
    assert memberships(ann) == {"team-a": (TeamRole.MEMBER, Source.SCIM)}


# --- tokens: the admins' page and manage.py -----------------------------------------------------------------


def test_an_admin_creates_a_token_shown_once_and_it_works(admin_client):
    response = admin_client.post(reverse("scim_tokens"), {"name": "entra"})
    assert response.status_code == 200
    secret = response.context["new_secret"]
    assert secret.startswith("scim_") and secret in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    token = ScimToken.objects.get(name="entra")
    assert token.token_hash != secret and secret not in token.token_hash and token.last4 == secret[-4:]
    assert AuditEvent.objects.get(action="scim_token.created").actor_label == "admin@example.com"

    page = admin_client.get(reverse("scim_tokens")).content.decode()
    assert "entra" in page and secret not in page
    assert "http://testserver/scim/v2/" in page
    assert ScimClient(secret).get("Users").status == 200


def test_a_second_live_token_with_the_same_name_is_refused(admin_client, scim_token):
    response = admin_client.post(reverse("scim_tokens"), {"name": "okta"})
    assert response.status_code == 400
    assert "already has this name" in response.content.decode()
    assert ScimToken.objects.count() == 1


def test_an_admin_revokes_a_token_and_it_stops_working(admin_client, scim_token, scim):
    token, _ = scim_token
    response = admin_client.post(reverse("scim_token_revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by.email == "admin@example.com"
    assert scim.get("Users").status == 401
    again = admin_client.post(reverse("scim_token_revoke", args=[token.pk]), follow=True)
    assert "already revoked" in again.content.decode()
    assert AuditEvent.objects.filter(action="scim_token.revoked").count() == 1


def test_the_token_page_keeps_csrf_protection(admin_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    assert browser.post(reverse("scim_tokens"), {"name": "forged"}).status_code == 403
    assert not ScimToken.objects.exists()


def test_manage_py_create_scim_token_prints_the_secret_once(db):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_scim_token", "okta", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    assert secret.startswith("scim_")
    assert "shown this once" in err.getvalue()
    token = ScimToken.objects.get(name="okta")
    assert token.created_by is None
    assert AuditEvent.objects.get(action="scim_token.created").actor_label == "manage.py create_scim_token"
    assert ScimClient(secret).get("ServiceProviderConfig").status == 200
    with pytest.raises(CommandError, match="already has this name"):
        call_command("create_scim_token", "okta", stdout=io.StringIO())


def test_changes_are_audited_with_the_tokens_name(admin_user, mappings):
    _, secret = services.scim_token_create(actor=admin_user, name="Entra ID")
    person = create_user(ScimClient(secret), "fi@example.com")
    assert AuditEvent.objects.get(action="user.created", target_id=str(person.pk)).actor_label == "scim:Entra ID"


def test_a_token_made_while_another_is_revoked_may_reuse_the_name(admin_user, scim_token):
    token, _ = scim_token
    services.scim_token_revoke(actor=admin_user, token=token)
    new, _ = services.scim_token_create(actor=admin_user, name="okta")
    assert new.pk != token.pk


def test_only_admins_may_create_scim_tokens_through_the_service(member_a_user, auditor_user):
    from django.core.exceptions import PermissionDenied

    for person in (member_a_user, auditor_user):
        with pytest.raises(PermissionDenied):
            services.scim_token_create(actor=person, name="sneaky")
    assert not ScimToken.objects.exists()
