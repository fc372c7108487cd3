"""PATCH /Users per RFC 7644 §3.5.2: add, replace and remove, with and without a path, with value filters,
on name, displayName, emails and active; read-only and unknown attributes are refused and change nothing."""

from __future__ import annotations

import pytest

from govsite.accounts.models import User
from tests.scim.conftest import patch_body
from tests.scim.helpers import assert_scim_error, create_user, snapshot

pytestmark = pytest.mark.django_db

WORK = {"value": "kit@example.com", "type": "work", "primary": True}
HOME = {"value": "kit@home.example", "type": "home"}


@pytest.fixture
def kit(scim) -> User:
    return create_user(
        scim,
        "kit@example.com",
        name={"givenName": "Kit", "familyName": "Old"},
        displayName="Kitty",
        emails=[WORK, HOME],
    )


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        (
            {"op": "replace", "path": "name.givenName", "value": "Kat"},
            {"name": {"givenName": "Kat", "familyName": "Old"}},
        ),
        (
            {"op": "add", "path": "name", "value": {"formatted": "Kit Old"}},
            {"name": {"givenName": "Kit", "familyName": "Old", "formatted": "Kit Old"}},
        ),
        (
            {"op": "replace", "value": {"name": {"familyName": "New"}}},
            {"name": {"givenName": "Kit", "familyName": "New"}},
        ),
        ({"op": "remove", "path": "name.familyName"}, {"name": {"givenName": "Kit"}}),
        ({"op": "remove", "path": "name"}, {"name": None}),
        ({"op": "replace", "path": "displayName", "value": "K."}, {"displayName": "K."}),
        ({"op": "remove", "path": "displayName"}, {"displayName": None}),
        ({"op": "add", "value": {"displayName": "Kit O."}}, {"displayName": "Kit O."}),
        (
            {"op": "replace", "path": 'emails[type eq "home"].value', "value": "kit@new.example"},
            {"emails": [WORK, {**HOME, "value": "kit@new.example"}]},
        ),
        ({"op": "remove", "path": 'emails[type eq "home"]'}, {"emails": [WORK]}),
        (
            {"op": "add", "path": "emails", "value": [{"value": "k@other.example", "type": "other"}]},
            {"emails": [WORK, HOME, {"value": "k@other.example", "type": "other"}]},
        ),
        (
            {"op": "add", "path": "emails", "value": [{"value": "k@p.example", "primary": True}]},
            {"emails": [{**WORK, "primary": False}, HOME, {"value": "k@p.example", "primary": True}]},
        ),
        ({"op": "replace", "path": "emails", "value": [HOME]}, {"emails": [HOME]}),
        ({"op": "remove", "path": "emails"}, {"emails": None}),
        ({"op": "replace", "path": "active", "value": False}, {"active": False}),
        ({"op": "replace", "value": {"active": "False"}}, {"active": False}),
    ],
)
def test_patch_semantics(scim, kit, operation, expected):
    response = scim.patch(f"Users/{kit.pk}", patch_body(operation))
    assert response.status == 200, response
    for attribute, value in expected.items():
        assert response.body.get(attribute) == value, (attribute, response.body)
    again = scim.get(f"Users/{kit.pk}").body  # what was returned is what was kept
    assert {a: again.get(a) for a in expected} == {a: response.body.get(a) for a in expected}


def test_the_shown_name_follows_the_patched_name(scim, kit):
    assert kit.full_name == "Kit Old"
    scim.patch(f"Users/{kit.pk}", patch_body({"op": "replace", "path": "name.givenName", "value": "Kat"}))
    kit.refresh_from_db()
    assert kit.full_name == "Kat Old"
    scim.patch(f"Users/{kit.pk}", patch_body({"op": "remove", "path": "name"}))
    kit.refresh_from_db()
    assert kit.full_name == "Kitty"  # displayName, once no name is left


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "replace", "path": "id", "value": "99"}, "mutability"),
        ({"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}, "mutability"),
        ({"op": "add", "path": "groups", "value": [{"value": "1"}]}, "mutability"),
        ({"op": "replace", "value": {"id": "99"}}, "mutability"),
        ({"op": "replace", "path": "shoeSize", "value": "42"}, "invalidPath"),
        ({"op": "replace", "path": "name.nickname", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "urn:example:custom:2.0:User:level", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[type eq "home" or (x)].value', "value": "x"}, "invalidFilter"),
        ({"op": "remove", "path": "active"}, "mutability"),
        ({"op": "replace", "path": "userName", "value": "not an email"}, "invalidValue"),
    ],
)
def test_read_only_and_unknown_attributes_are_refused(scim, kit, operation, scim_type):
    before = snapshot()
    response = scim.patch(f"Users/{kit.pk}", patch_body(operation))
    assert_scim_error(response, 400, scim_type)
    assert snapshot() == before
    if scim_type == "invalidValue":
        assert "must be an email address" in response.body["detail"]
