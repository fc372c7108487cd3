"""SCIM discovery and the bearer token: who may call, and the tokens admins and operators create and revoke.

Calls go through the real URL routing and views with a bearer token (no session, CSRF checks on).
"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from govsite.accounts import services
from govsite.accounts.models import ScimToken, User
from tests.scim.conftest import ERROR_SCHEMA, LIST_SCHEMA, USER_SCHEMA, ScimClient, user_body
from tests.scim.helpers import ACTOR, assert_scim_error, create_user, snapshot

pytestmark = pytest.mark.django_db


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
    core = "urn:ietf:params:scim:schemas:core:2.0:"
    assert ids == {
        USER_SCHEMA,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        f"{core}Group",
        f"{core}ServiceProviderConfig",
        f"{core}ResourceType",
        f"{core}Schema",
    }
    user_schema = scim.get(f"Schemas/{USER_SCHEMA}")
    attributes = {a["name"]: a for a in user_schema.body["attributes"]}
    assert set(attributes) >= {"userName", "name", "active", "displayName", "emails", "groups"}
    # externalId is a common attribute (RFC 7643 §3.1): in every resource, in no schema
    assert "externalId" not in attributes
    emails = {a["name"]: a for a in attributes["emails"]["subAttributes"]}
    assert set(emails) == {"value", "display", "type", "primary"}
    groups = {a["name"]: a for a in attributes["groups"]["subAttributes"]}
    assert groups["$ref"]["referenceTypes"] == ["Group"] and "type" in groups
    group_schema = scim.get(f"Schemas/{core}Group").body
    members = {a["name"]: a for a in group_schema["attributes"][1]["subAttributes"]}
    assert members["$ref"]["referenceTypes"] == ["User"] and "type" in members
    types = scim.get("ResourceTypes")
    assert {(t["name"], t["endpoint"]) for t in types.body["Resources"]} == {("User", "/Users"), ("Group", "/Groups")}
    assert scim.get("ResourceTypes/Group").body["schema"] == "urn:ietf:params:scim:schemas:core:2.0:Group"
    assert_scim_error(scim.get("ResourceTypes/Printer"), 404)


# --- the bearer token -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "Users",
        "Users/1",
        "Groups",
        "ServiceProviderConfig",
        "Schemas",
        "ResourceTypes",
        "Groups/1",
        "Users/.search",
        "Groups/.search",
        "Bulk",
        "Me",
        "NoSuchThing",
    ],
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


# --- every answer is SCIM -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "NoSuchThing", 404),
        ("post", "Users/1/extra", 404),
        ("delete", "Schemas/x/y", 404),
        ("get", "/scim/v2", 404),
        ("post", "Bulk", 501),
        ("get", "Me", 501),
        ("post", ".search", 501),
        ("delete", "ServiceProviderConfig", 405),
        ("get", "Users/.search", 405),
    ],
)
def test_unknown_paths_and_unsupported_operations_answer_a_scim_error(scim, method, path, status):
    response = scim.call(method.upper(), path, {} if method == "post" else None)
    assert_scim_error(response, status)
    if status == 405:
        assert response.headers["Allow"]


def test_a_delete_answers_204_without_a_body(scim, member_b_user):
    response = scim.client.delete(
        f"/scim/v2/Users/{member_b_user.pk}", headers={"Authorization": f"Bearer {scim.secret}"}
    )
    assert (response.status_code, response.content) == (204, b"")
    assert "Content-Type" not in response


def test_search_with_a_body(scim, member_a_user, member_b_user):
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": f'userName eq "{member_a_user.email}"',
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 10,
    }
    response = scim.post("Users/.search", body)
    assert response.status == 200, response
    assert [set(r) for r in response.body["Resources"]] == [{"schemas", "id", "userName"}]
    assert_scim_error(scim.post("Users/.search", {"filter": "x"}), 400, "invalidSyntax")
