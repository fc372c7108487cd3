"""Settings → API tokens: a person makes a token, sees its secret once, and revokes it after a confirmation."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from govsite.api.models import ApiToken
from tests.api.helpers import make_token

pytestmark = pytest.mark.django_db


def _create(client, **overrides):
    data = {"name": "nightly export", "scope": "read", "lifetime": "90", **overrides}
    return client.post(reverse("settings_api_tokens"), data)


def test_the_secret_is_shown_once_and_works(member_a_client):
    response = _create(member_a_client)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = re.search(r"gst_[A-Za-z0-9_-]{40,}", response.content.decode()).group(0)
    token = ApiToken.objects.get()
    assert token.scope == "read" and token.prefix == secret[:12]
    assert 89 <= (token.expires_at - token.created_at).days <= 90
    again = member_a_client.get(reverse("settings_api_tokens")).content.decode()
    assert secret not in again and token.prefix in again
    assert Client(headers={"Authorization": f"Bearer {secret}"}).get(reverse("api_me")).status_code == 200
    assert AuditEvent.objects.filter(action="api_token.created", actor__isnull=False).count() == 1


def test_bad_input_shows_the_form_again_and_makes_nothing(member_a_client):
    response = _create(member_a_client, name="", lifetime="9999")
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"name", "lifetime"}
    assert not ApiToken.objects.exists()


def test_an_unknown_scope_is_refused(auditor_client):
    assert _create(auditor_client, scope="admin").status_code == 400
    assert not ApiToken.objects.exists()


def test_people_see_their_own_tokens_and_admins_everyones_live_ones(
    member_a_user, member_b_user, member_a_client, admin_client
):
    make_token(member_a_user)
    make_token(member_b_user)
    mine = member_a_client.get(reverse("settings_api_tokens")).context
    assert [t.user_id for t in mine["tokens"]] == [member_a_user.pk] and not mine["others"]
    admins = admin_client.get(reverse("settings_api_tokens")).context
    assert list(admins["tokens"]) == [] and {t.user_id for t in admins["others"]} == {
        member_a_user.pk,
        member_b_user.pk,
    }


def test_revoke_asks_first_then_the_token_is_refused(member_a_user, member_a_client):
    secret = make_token(member_a_user)
    token = ApiToken.objects.get()
    url = reverse("settings_api_token_revoke", args=[token.pk])
    page = member_a_client.get(url)
    assert page.status_code == 200 and token.name in page.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None  # the GET only asks
    response = member_a_client.post(url)
    assert response.status_code == 302 and response.url == reverse("settings_api_tokens")
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == member_a_user
    assert Client(headers={"Authorization": f"Bearer {secret}"}).get(reverse("api_me")).status_code == 401
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", "data__reason"))
    assert actions == [("api_token.revoked", None), ("api_token.refused", "revoked")]


def test_someone_elses_token_is_not_found_and_stays_valid(member_a_user, member_b_client):
    make_token(member_a_user)
    token = ApiToken.objects.get()
    url = reverse("settings_api_token_revoke", args=[token.pk])
    assert member_b_client.get(url).status_code == 404  # looked up in the caller's scope, like every object
    assert member_b_client.post(url).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuditEvent.objects.exists()
