"""SCIM fixtures: a token made through the service, and a client that speaks SCIM with it.

The client enforces CSRF checks like a browser-less caller meets them in production: the SCIM endpoints
must work without a CSRF token (they are exempt), the token pages must not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.test import Client

from govsite.accounts import services
from govsite.accounts.models import OrgRole, ScimToken, TeamRole
from tests.factories import SsoGroupMappingFactory
from tests.keys.conftest import live_gateway, open_model  # noqa: F401  (the key lifecycle's fixtures, shared)

CONTENT_TYPE = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
BASE = "/scim/v2/"


@dataclass
class ScimResponse:
    status: int
    body: dict
    headers: dict

    def __repr__(self) -> str:
        return f"<SCIM {self.status} {json.dumps(self.body)[:500]}>"


class ScimClient:
    """What an identity provider sends: JSON bodies, a bearer token, no cookies and no CSRF token."""

    def __init__(self, secret: str | None):
        self.client = Client(enforce_csrf_checks=True)
        self.secret = secret

    def call(self, method: str, path: str, body=None, *, raw: str | bytes | None = None, **params) -> ScimResponse:
        headers = {"Authorization": f"Bearer {self.secret}"} if self.secret else {}
        url = path if path.startswith("/") else BASE + path
        if params:
            url += "?" + urlencode(params)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"content_type": CONTENT_TYPE, "data": data} if data is not None else {}
        response = getattr(self.client, method.lower())(url, headers=headers, **kwargs)
        if response.status_code != 204:
            assert response["Content-Type"].startswith(CONTENT_TYPE), response["Content-Type"]
        parsed = json.loads(response.content) if response.content else {}
        return ScimResponse(response.status_code, parsed, dict(response.headers))

    def get(self, path, **params):
        return self.call("GET", path, **params)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path):
        return self.call("DELETE", path)


@pytest.fixture
def scim_token(admin_user) -> tuple[ScimToken, str]:
    return services.scim_token_create(actor=admin_user, name="okta")


@pytest.fixture
def scim(scim_token) -> ScimClient:
    return ScimClient(scim_token[1])


def user_body(email: str, **extra) -> dict:
    return {"schemas": [USER_SCHEMA], "userName": email, **extra}


def group_body(name: str, *member_ids, **extra) -> dict:
    return {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": str(i)} for i in member_ids], **extra}


def patch_body(*operations: dict) -> dict:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


@pytest.fixture
def mappings(team_a, team_b):
    SsoGroupMappingFactory(group="Engineering A", team=team_a, team_role=TeamRole.MEMBER)
    SsoGroupMappingFactory(group="Engineering A leads", team=team_a, team_role=TeamRole.APPROVER)
    SsoGroupMappingFactory(group="Engineering B", team=team_b, team_role=TeamRole.MEMBER)
    SsoGroupMappingFactory(group="Finance", team=None, team_role="", org_role=OrgRole.FINANCE)
