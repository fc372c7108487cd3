"""The step-up: with MFA_REQUIRED, every view guarded by `second_factor_required` (deciding key requests and
budget increases, changing roles and policy, exporting evidence, minting an API token) asks for the second
factor again when the last one is older than MFA_STEP_UP_SECONDS; after it, the suspended request is carried
out. The guarded views and their calls come from the URL permission table (tests/permissions.py), so a view
the decorator is added to later is checked here without a new row."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from audit.models import AuditEvent
from govsite.accounts.models import OrgRole
from govsite.api import services as api_services
from keys.models import KeyRequest
from tests.accounts.mfa_helpers import PASSWORD, age_session, signed_in_with_second_factor, totp_code
from tests.factories import KeyRequestFactory, make_user
from tests.permissions import ADMIN, APPROVER_A, AUDITOR, FINANCE, MEMBER_A, Call, all_cases

pytestmark = pytest.mark.django_db

WINDOW = 15 * 60
STEP_UP = reverse("mfa_reauthenticate")


@pytest.fixture(autouse=True)
def mfa_required(settings):
    settings.MFA_REQUIRED = True
    settings.MFA_STEP_UP_SECONDS = WINDOW
    settings.MFA_TOTP_TOLERANCE = 1  # a code computed at the end of a 30 s period still counts
    # Every test signs in with a password: a fast hasher (Argon2's cost is not what these tests check).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _guarded(patterns=None) -> dict[str, tuple[str, ...]]:
    """{url name: methods} of every view wearing second_factor_required."""
    found: dict[str, tuple[str, ...]] = {}
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            found.update(_guarded(pattern.url_patterns))
        elif isinstance(pattern, URLPattern) and pattern.name:
            methods = getattr(pattern.callback, "second_factor_required", None)
            if methods:
                found[pattern.name] = methods
    return found


GUARDED = _guarded()
CASES = [c for c in all_cases() if c.method.upper() in GUARDED.get(c.name, ()) and c.expected_ok in (200, 302)]
# The list: deciding a key request or an increase, changing roles or policy, exporting evidence.
REQUIRED = {
    "approval_decide": "POST",
    "budget_increase_decide": "POST",
    "person_roles": "POST",
    "membership_role": "POST",
    "membership_add": "POST",
    "membership_remove": "POST",
    "sso_mappings": "POST",
    "model_policy_edit": "POST",
    "model_policy_create": "POST",
    "team_key_policy": "POST",
    "evidence_export_start": "POST",
    "evidence_export_download": "GET",
    "settings_api_tokens": "POST",
}


def test_the_sensitive_views_are_guarded():
    missing = sorted(name for name, method in REQUIRED.items() if method not in GUARDED.get(name, ()))
    assert not missing, f"views that should ask for a recent second factor but do not: {missing}"
    assert {c.name for c in CASES} >= set(REQUIRED), "every guarded view has a permission row to call it with"


def _caller(case) -> str:
    return next(role for role in (ADMIN, FINANCE, APPROVER_A, AUDITOR, MEMBER_A) if role in case.allowed)


def _prepare(case, world):
    role = _caller(case)
    team = world.home_team(role)
    user = world.users[role]
    client = signed_in_with_second_factor(user)
    kwargs = case.kwargs(world, team) if case.kwargs else {}
    data = case.data(world, team) if case.data else {}
    return client, Call(world, team, user, kwargs, data), reverse(case.name, kwargs=kwargs or None)


def _call(client: Client, case, url: str, data: dict):
    return client.post(url, data) if case.method == "post" else client.get(url)


def _done(case, call: Call, response) -> bool:
    if case.effect is not None:
        return case.effect(call)
    return response.status_code == case.expected_ok


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_fresh_second_factor_lets_the_action_through(case, world):
    client, call, url = _prepare(case, world)
    response = _call(client, case, url, call.data)
    assert response.status_code == case.expected_ok
    if response.status_code == 302:
        assert not response.url.startswith(STEP_UP)
    assert _done(case, call, response)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_an_old_second_factor_is_asked_again_then_the_action_is_carried_out(case, world):
    client, call, url = _prepare(case, world)
    age_session(client, WINDOW + 1)
    before = AuditEvent.objects.count()
    asked = _call(client, case, url, call.data)
    assert asked.status_code == 302
    where = urlsplit(asked.url)
    assert where.path == STEP_UP, f"{case.id} went to {asked.url}, not the second-factor page"
    assert parse_qs(where.query)["next"] == [url]
    assert AuditEvent.objects.count() == before, "nothing was done before the second factor"
    if case.effect is not None:
        assert not case.effect(call)
    page = client.get(asked.url)
    assert page.status_code == 200 and "Confirm it is you" in page.content.decode()
    assert "Use your password" not in page.content.decode(), "the password is not a second factor"

    confirmed = client.post(asked.url, {"code": totp_code(call.user)})
    if case.method == "get":  # allauth sends the person back to the page, which now answers
        assert confirmed.status_code == 302 and confirmed.url == url
        confirmed = client.get(url)
    assert confirmed.status_code == case.expected_ok, confirmed.content.decode()[:1000]
    assert _done(case, call, confirmed)


def test_a_wrong_code_does_not_carry_the_action_out(world):
    approver = world.users[APPROVER_A]
    request = KeyRequestFactory(team=world.team_a, requested_by=world.users[MEMBER_A])
    client = signed_in_with_second_factor(approver)
    age_session(client, WINDOW + 1)
    url = reverse("approval_decide", args=[request.pk])
    asked = client.post(url, {"decision": "reject", "note": "no"})
    wrong = client.post(asked.url, {"code": "00000x"})
    assert wrong.status_code == 200 and "Incorrect code." in wrong.content.decode()
    assert KeyRequest.objects.get(pk=request.pk).status == KeyRequest.Status.PENDING
    assert AuditEvent.objects.filter(action="mfa.code_refused", data__step_up=True).exists()


def test_the_password_does_not_stand_in_for_the_second_factor(world):
    approver = world.users[APPROVER_A]
    request = KeyRequestFactory(team=world.team_a, requested_by=world.users[MEMBER_A])
    client = signed_in_with_second_factor(approver)
    age_session(client, WINDOW + 1)
    url = reverse("approval_decide", args=[request.pk])
    client.post(url, {"decision": "reject", "note": "no"})
    # allauth's password page, reached by hand: the suspended decision is resumed, and asks again.
    again = client.post(f"{reverse('account_reauthenticate')}?next={url}", {"password": PASSWORD})
    assert again.status_code == 302 and urlsplit(again.url).path == STEP_UP
    assert KeyRequest.objects.get(pk=request.pk).status == KeyRequest.Status.PENDING


def test_inside_the_window_nobody_is_asked_again(world):
    approver = world.users[APPROVER_A]
    request = KeyRequestFactory(team=world.team_a, requested_by=world.users[MEMBER_A])
    client = signed_in_with_second_factor(approver)
    age_session(client, WINDOW - 60)
    response = client.post(reverse("approval_decide", args=[request.pk]), {"decision": "reject", "note": "no"})
    assert response.status_code == 302 and response.url == reverse("approval_queue")
    assert KeyRequest.objects.get(pk=request.pk).status == KeyRequest.Status.REJECTED


def test_with_the_setting_off_nobody_is_asked(settings, world):
    settings.MFA_REQUIRED = False
    approver = world.users[APPROVER_A]
    request = KeyRequestFactory(team=world.team_a, requested_by=world.users[MEMBER_A])
    client = signed_in_with_second_factor(approver)
    age_session(client, WINDOW * 10)
    client.post(reverse("approval_decide", args=[request.pk]), {"decision": "reject", "note": "no"})
    assert KeyRequest.objects.get(pk=request.pk).status == KeyRequest.Status.REJECTED


def test_an_sso_only_person_is_not_asked(world):
    admin = make_user(email="sso@example.com", org_roles=[OrgRole.ADMIN])  # no password: signs in through SSO
    request = KeyRequestFactory(team=world.team_a, requested_by=world.users[MEMBER_A])
    client = Client()
    client.force_login(admin)
    client.post(reverse("approval_decide", args=[request.pk]), {"decision": "reject", "note": "no"})
    assert KeyRequest.objects.get(pk=request.pk).status == KeyRequest.Status.REJECTED


# --- the API: a browser session is asked like the pages; a personal token is not -----------------------------


def test_a_session_api_decision_with_an_old_second_factor_is_refused(world):
    approver = world.users[APPROVER_A]
    request = KeyRequestFactory(team=world.team_a, requested_by=world.users[MEMBER_A])
    client = signed_in_with_second_factor(approver)
    age_session(client, WINDOW + 1)
    csrf_client = Client(enforce_csrf_checks=False)
    csrf_client.cookies = client.cookies
    url = reverse("api_approval_decide", args=[request.pk])
    response = csrf_client.post(url, {"decision": "reject", "note": "no"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "second_factor_required"
    assert KeyRequest.objects.get(pk=request.pk).status == KeyRequest.Status.PENDING
    # Fresh again (a code at the step-up page): the same call goes through.
    client.post(STEP_UP, {"code": totp_code(approver)})
    response = csrf_client.post(url, {"decision": "reject", "note": "no"}, content_type="application/json")
    assert response.status_code == 200
    assert KeyRequest.objects.get(pk=request.pk).status == KeyRequest.Status.REJECTED


def test_a_personal_token_decides_without_a_second_factor(world):
    approver = world.users[APPROVER_A]
    signed_in_with_second_factor(approver)
    request = KeyRequestFactory(team=world.team_a, requested_by=world.users[MEMBER_A])
    _, secret = api_services.api_token_create(
        user=approver, name="bot", scope="write", expires_at=timezone.now() + timedelta(days=7)
    )
    response = Client().post(
        reverse("api_approval_decide", args=[request.pk]),
        {"decision": "reject", "note": "no"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 200
    assert KeyRequest.objects.get(pk=request.pk).status == KeyRequest.Status.REJECTED
