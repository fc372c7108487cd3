"""A key's secret exists in exactly one place after provisioning: the single reveal page."""

import logging

import pytest
from django.db import connection
from django.urls import reverse

from keys import services
from keys.models import VirtualKey
from tests.keys.conftest import request_input

pytestmark = pytest.mark.django_db(transaction=True)


def _every_row_as_text() -> str:
    tables = connection.introspection.table_names()
    chunks = []
    with connection.cursor() as cursor:
        for table in tables:
            quoted = connection.ops.quote_name(table)
            if connection.vendor == "postgresql":
                cursor.execute(f"SELECT t::text FROM {quoted} t")  # noqa: S608 - table names from introspection
            else:
                cursor.execute(f"SELECT * FROM {quoted}")  # noqa: S608
            chunks.extend(str(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_no_secret_in_the_database_logs_or_pages_after_the_reveal(
    live_gateway,
    caplog,
    team_a,
    member_a_user,
    approver_a_user,
    admin_user,
    member_a_client,
    admin_client,
    approver_a_client,
    open_model,
):
    caplog.set_level(logging.DEBUG)
    kr = services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model]))
    key = services.key_request_approve(request=kr, approver=approver_a_user)
    key.refresh_from_db()
    assert key.status == VirtualKey.Status.ACTIVE

    reveal = member_a_client.post(reverse("key_reveal", args=[key.pk]))
    secret = reveal.context["secret"]
    assert secret in reveal.content.decode()
    assert "no-store" in reveal["Cache-Control"]

    key.refresh_from_db()
    assert key.secret_encrypted is None
    assert secret not in _every_row_as_text()
    assert secret not in caplog.text

    pages = [
        (member_a_client, reverse("key_list")),
        (member_a_client, reverse("key_detail", args=[key.pk])),
        (member_a_client, reverse("key_request_detail", args=[kr.pk])),
        (member_a_client, reverse("home")),
        (approver_a_client, reverse("key_detail", args=[key.pk])),
        (admin_client, reverse("audit_log")),
        (admin_client, reverse("gateway_commands")),
    ]
    for client, url in pages:
        body = client.get(url).content.decode()
        assert secret not in body, url
    assert key.masked in member_a_client.get(reverse("key_detail", args=[key.pk])).content.decode()


def test_a_secret_encrypted_under_an_older_encryption_secret_is_a_clear_refusal(world, settings):
    """After SECRET_KEY (or KEY_ENCRYPTION_SECRET) changed, the reveal says what happened and what to do;
    the key and its encrypted secret are left as they were (the old secret may come back)."""
    from tests.keys.url_cases import _key

    key = _key(world, world.team_a)
    stored = bytes(key.secret_encrypted)
    settings.KEY_ENCRYPTION_SECRET = "a-new-encryption-secret-after-rotation"
    response = world.client("member_a").post(reverse("key_reveal", args=[key.pk]), follow=True)
    assert response.status_code == 200
    assert "Rotate the key" in response.content.decode()
    key.refresh_from_db()
    assert bytes(key.secret_encrypted) == stored and key.revealed_at is None
