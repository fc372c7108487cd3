"""The OpenAPI schema describes every operation accurately, and the docs page serves it without a CDN."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.validation import validate_schema

from tests.api.helpers import token_client

pytestmark = pytest.mark.django_db

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def schema(member_a_user):
    GENERATOR_STATS.reset()
    response = token_client(member_a_user, scope="read").get(reverse("api_schema"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def test_the_schema_is_valid_openapi_3_and_generated_without_warnings(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert not GENERATOR_STATS, (
        f"drf-spectacular warnings: {dict(GENERATOR_STATS._warn_cache)} {dict(GENERATOR_STATS._error_cache)}"
    )


def test_every_operation_is_annotated(schema):
    operation_ids = []
    for path, item in schema["paths"].items():
        assert path.startswith("/api/v1/"), path
        for method, operation in item.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            operation_ids.append(operation["operationId"])
            assert operation.get("summary") and operation.get("tags"), where
            assert {"apiToken": []} in operation["security"] and {"cookieAuth": []} in operation["security"], where
            responses = operation["responses"]
            ok = [code for code in responses if code.startswith("2")]
            assert len(ok) == 1 and "content" in responses[ok[0]], f"{where}: one documented success body"
            for code in ("401", "403"):
                assert responses[code]["content"]["application/json"]["schema"]["$ref"].endswith("/ApiError"), where
            if method != "get" and "requestBody" in operation:
                assert "400" in responses and "413" in responses and "415" in responses, where
            if "{id}" in path:
                assert "404" in responses, where
    assert len(operation_ids) == len(set(operation_ids))


def test_the_schema_needs_credentials_and_also_speaks_yaml(member_a_client):
    anonymous = Client().get(reverse("api_schema"))
    assert anonymous.status_code == 401
    response = member_a_client.get(reverse("api_schema"), HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200 and response.content.startswith(b"openapi: 3.")


def test_the_docs_page_uses_the_sites_own_static_files(member_a_client):
    assert Client().get(reverse("api_docs")).status_code == 302  # to the login page
    page = member_a_client.get(reverse("api_docs")).content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', page)
    assert len(assets) >= 3
    for asset in assets:
        # Swagger UI from drf-spectacular-sidecar; its start-up script and colours are govsite's own.
        assert asset.startswith(("/static/drf_spectacular_sidecar/", "/static/js/", "/static/css/")), (
            f"{asset} is not served by the site"
        )
        assert finders.find(asset.removeprefix("/static/")), (
            f"{asset} is not found: add 'drf_spectacular_sidecar' to INSTALLED_APPS"
        )
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in assets
    assert reverse("api_schema") in page
