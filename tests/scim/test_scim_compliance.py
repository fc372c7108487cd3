"""govsite's /scim/v2/ checked by scim2-tester (python-scim's RFC 7643/7644 compliance checker) and by scim2-cli's
`scim2 test`, against govsite served by gunicorn and by Django's development server, over real HTTP.

One rule of govsite's fails checks on purpose: userName must be an email address (it is the login), and the
checker fills userName with a random UUID. Those checks, and the Group checks that first create a User to
make it a member, are the only expected failures; the set is asserted exactly, so a new failure (or one
that starts passing) fails the test. Keep-alive is checked too: a DELETE answered with a body would be
read as the start of the next response on the same connection.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from govsite.accounts import services
from govsite.accounts.models import User
from tests.api.server import start_api_server
from tests.gateway_fixtures import unavailable
from tests.scim.conftest import CONTENT_TYPE, USER_SCHEMA

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Each fails only because the checker's userName is not an email (the User checks create one; the Group
# checks that fill `members` create a User to be the member first).
NEEDS_NON_EMAIL_USERNAME = {
    ("User", name)
    for name in (
        "object_creation",
        "object_query",
        "object_query_without_id",
        "object_query_with_attributes",
        "object_list_with_attributes",
        "search_with_attributes",
        "object_replacement",
        "object_deletion",
        "check_add_attribute",
        "check_remove_attribute",
        "check_replace_attribute",
    )
} | {
    ("Group", name)
    for name in (
        "object_query_with_attributes",
        "object_list_with_attributes",
        "search_with_attributes",
        "object_replacement",
        "check_add_attribute",
        "check_remove_attribute",
        "check_replace_attribute",
    )
}
EMAIL_REFUSAL = "userName must be an email address"


@pytest.fixture(scope="module", params=["gunicorn", "runserver"])
def scim_server(request, django_db_setup, django_db_blocker, sandbox_gateway, tmp_path_factory):
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            unavailable("govsite runs as its own process on the test database, which needs PostgreSQL")
    server = start_api_server(tmp_path_factory.mktemp(request.param), sandbox_gateway, server=request.param)
    yield server
    server.stop()


@pytest.fixture
def secret(admin_user) -> str:
    return services.scim_token_create(actor=admin_user, name="scim2-tester")[1]


def test_scim2_tester_passes_every_check_but_the_non_email_username_ones(scim_server, secret):
    client = SyncSCIMClient(
        Client(base_url=f"{scim_server.url}/scim/v2", headers={"Authorization": f"Bearer {secret}"})
    )
    results = check_server(client)

    failed = {(r.resource_type or "", r.title): r.reason for r in results if r.status != Status.SUCCESS}
    assert set(failed) == NEEDS_NON_EMAIL_USERNAME, (failed, scim_server.tail())
    assert all(EMAIL_REFUSAL in (reason or "") for reason in failed.values()), failed
    assert sum(r.status == Status.SUCCESS for r in results) == len(results) - len(NEEDS_NON_EMAIL_USERNAME) == 32
    scim_server.check_alive()


def test_scim2_cli_test_reports_the_same(scim_server, secret):
    result = subprocess.run(  # noqa: S603 - scim2-cli's script beside our interpreter
        [str(Path(sys.executable).with_name("scim2")), "-u", f"{scim_server.url}/scim/v2", "test"],
        env={**os.environ, "SCIM_CLI_HEADERS": f"Authorization: Bearer {secret}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = result.stdout.splitlines()
    failed = sorted(line.split()[1] for line in lines if line.split()[:1] and line.split()[0] in {"ERROR", "CRITICAL"})
    assert failed == sorted(name for _, name in NEEDS_NON_EMAIL_USERNAME), result.stdout + result.stderr
    assert sum(line.startswith("SUCCESS ") for line in lines) == 32, result.stdout
    assert result.returncode == 1  # the CLI fails while any check fails


def test_a_delete_then_a_post_on_one_kept_alive_connection(scim_server, secret, member_b_user):
    """Two requests on one HTTP connection: the DELETE's 204 must carry no body, or the POST's answer
    would begin with it."""
    parts = urlsplit(scim_server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": CONTENT_TYPE, "Connection": "keep-alive"}
    try:
        conn.request("DELETE", f"/scim/v2/Users/{member_b_user.pk}", headers=headers)
        deleted = conn.getresponse()
        assert (deleted.status, deleted.read()) == (204, b"")
        assert deleted.getheader("Content-Length") in (None, "0")
        socket_before = conn.sock

        body = {"schemas": [USER_SCHEMA], "userName": "kept.alive@example.com", "name": {"givenName": "Kept"}}
        conn.request("POST", "/scim/v2/Users", body=json.dumps(body), headers=headers)
        created = conn.getresponse()
        payload = json.loads(created.read())
        assert created.status == 201, payload
        assert payload["userName"] == "kept.alive@example.com"
        # Both servers (gunicorn's threaded workers and Django's) keep the connection open: the POST went
        # over the DELETE's connection.
        assert conn.sock is socket_before is not None
    finally:
        conn.close()
    assert User.objects.filter(email="kept.alive@example.com").exists()
