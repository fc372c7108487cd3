"""The requests Okta and Entra ID send, as their public SCIM documentation shows them, byte for byte except
for ids (theirs are UUIDs; govsite's are the ids it returned) and userName (govsite needs an email).

- Okta: "SCIM 2.0 protocol reference" / "Build a SCIM provisioning integration"
  (developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20/).
- Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID", section
  "Understand the Microsoft Entra SCIM implementation" — its request/response samples
  (learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups).
"""

from __future__ import annotations

import pytest

from govsite.accounts.models import User
from tests.scim.helpers import assert_scim_error

pytestmark = pytest.mark.django_db

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


# --- Okta -------------------------------------------------------------------------------------------------


def okta_create(scim) -> dict:
    # Okta: "Create the user" (POST /Users), password included when the app syncs passwords.
    body = {
        "schemas": [USER],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    response = scim.post("Users", body)
    assert response.status == 201, response
    return response.body


def test_okta_checks_for_the_user_then_creates_them(scim):
    # Okta: "Determine if the user already exists"
    found = scim.get("Users", filter='userName eq "test.user@okta.local"', startIndex=1, count=100)
    assert (found.status, found.body["totalResults"], found.body["Resources"]) == (200, 0, [])
    created = okta_create(scim)
    assert created["name"] == {"givenName": "Test", "familyName": "User"} and created["displayName"] == "Test User"
    assert created["locale"] == "en-US" and "password" not in created and "groups" not in created
    assert User.objects.get(email="test.user@okta.local").full_name == "Test User"
    found = scim.get("Users", filter='userName eq "test.user@okta.local"', startIndex=1, count=100)
    assert [u["id"] for u in found.body["Resources"]] == [created["id"]]


def test_okta_updates_a_profile_with_put(scim):
    user = okta_create(scim)
    # Okta: "Update a specific user (PUT)" — the whole resource, id and all.
    body = {
        "schemas": [USER],
        "id": user["id"],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Another", "middleName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Another Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    response = scim.put(f"Users/{user['id']}", body)
    assert response.status == 200, response
    assert response.body["name"] == {"givenName": "Another", "middleName": "Test", "familyName": "User"}
    assert User.objects.get(email="test.user@okta.local").full_name == "Another User"


def test_okta_deactivates_and_reactivates(scim):
    user = okta_create(scim)
    for active in (False, True):
        # Okta: "Update a specific user (PATCH)" — deactivation, then reactivation.
        body = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": active}}]}
        response = scim.patch(f"Users/{user['id']}", body)
        assert (response.status, response.body["active"]) == (200, active)
        assert User.objects.get(email="test.user@okta.local").is_active is active


def test_okta_group_push(scim):
    user = okta_create(scim)
    # Okta: "Create a group" (Group Push), then rename, add, remove members, list with paging, delete.
    created = scim.post("Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []})
    assert created.status == 201, created
    gid = created.body["id"]
    rename = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2b"}}],
    }
    assert scim.patch(f"Groups/{gid}", rename).body["displayName"] == "Test SCIMv2b"
    add = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "add", "path": "members", "value": [{"value": user["id"], "display": "test.user@okta.local"}]}
        ],
    }
    assert [m["value"] for m in scim.patch(f"Groups/{gid}", add).body["members"]] == [user["id"]]
    remove = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{user["id"]}"]'}]}
    assert "members" not in scim.patch(f"Groups/{gid}", remove).body
    page = scim.get("Groups", startIndex=1, count=100)
    assert page.body["totalResults"] == 1 and page.body["startIndex"] == 1
    by_name = scim.get("Groups", filter='displayName eq "Test SCIMv2b"', startIndex=1, count=100)
    assert [g["id"] for g in by_name.body["Resources"]] == [gid]
    assert scim.delete(f"Groups/{gid}").status == 204
    assert_scim_error(scim.get(f"Groups/{gid}"), 404)


# --- Entra ID ---------------------------------------------------------------------------------------------


def entra_create(scim) -> dict:
    # Entra ID: "Create User" request (userName: the user principal name, an email address here).
    body = {
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@testuser.com",
        "active": True,
        "emails": [
            {"primary": True, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}
        ],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
    }
    response = scim.post("Users", body)
    assert response.status == 201, response
    return response.body


def test_entra_creates_and_finds_users_by_username_and_external_id(scim):
    user = entra_create(scim)
    assert user["externalId"] == "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" and "roles" not in user
    # Entra ID: "Get User by query" and "Get User by query - Zero results"
    found = scim.get("Users", filter='userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@testuser.com"')
    assert [u["id"] for u in found.body["Resources"]] == [user["id"]]
    assert scim.get("Users", filter='userName eq "non-existent user"').body["totalResults"] == 0
    by_external = scim.get("Users", filter='externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"')
    assert [u["id"] for u in by_external.body["Resources"]] == [user["id"]]


def test_entra_updates_multi_valued_and_single_valued_attributes(scim):
    user = entra_create(scim)
    # Entra ID: "Update User [Multi-valued properties]"
    body = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        ],
    }
    response = scim.patch(f"Users/{user['id']}", body)
    assert response.status == 200, response
    assert response.body["emails"] == [{"primary": True, "type": "work", "value": "updatedEmail@microsoft.com"}]
    assert response.body["name"]["familyName"] == "updatedFamilyName"
    # Entra ID: "Update User [Single-valued properties]"
    body = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}
        ],
    }
    response = scim.patch(f"Users/{user['id']}", body)
    assert response.body["userName"] == "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    # Entra ID's default mappings also send the enterprise extension: kept as sent
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Finance"}],
    }
    assert scim.patch(f"Users/{user['id']}", body).body[ENTERPRISE] == {"department": "Finance"}


def test_entra_disables_with_a_string_boolean_then_deletes(scim):
    user = entra_create(scim)
    # Entra ID: "Disable User"
    body = {"Operations": [{"op": "Replace", "path": "active", "value": "False"}], "schemas": [PATCH]}
    response = scim.patch(f"Users/{user['id']}", body)
    assert (response.status, response.body["active"]) == (200, False)
    # Entra ID: "Delete User": 204 and no body
    assert scim.delete(f"Users/{user['id']}").status == 204
    assert_scim_error(scim.get(f"Users/{user['id']}"), 404)


def test_entra_groups(scim):
    user = entra_create(scim)
    # Entra ID: "Create Group"
    created = scim.post(
        "Groups",
        {
            "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"},
        },
    )
    assert created.status == 201, created
    gid = created.body["id"]
    # Entra ID: "Get Group by displayName" (without its members)
    found = scim.get("Groups", excludedAttributes="members", filter='displayName eq "displayName"')
    assert [g["id"] for g in found.body["Resources"]] == [gid] and "members" not in found.body["Resources"][0]
    # Entra ID: "Update Group [Non-member attributes]"
    body = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}
        ],
    }
    assert scim.patch(f"Groups/{gid}", body).status == 200
    # Entra ID: "Update Group [Add Members]" and "[Remove Members]" ($ref null)
    add = {
        "schemas": [PATCH],
        "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": user["id"]}]}],
    }
    assert [m["value"] for m in scim.patch(f"Groups/{gid}", add).body["members"]] == [user["id"]]
    member_filter = scim.get(
        "Groups", filter=f'id eq "{gid}" and members eq "{user["id"]}"', excludedAttributes="members"
    )
    assert member_filter.body["totalResults"] == 1
    remove = {
        "schemas": [PATCH],
        "Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": None, "value": user["id"]}]}],
    }
    assert "members" not in scim.patch(f"Groups/{gid}", remove).body
    # Entra ID: "Delete Group"
    assert scim.delete(f"Groups/{gid}").status == 204
