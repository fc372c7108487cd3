"""Multi-factor authentication (govsite.accounts.mfa over allauth.mfa): who must enrol, SSO people relying on
their identity provider, the audit trail of factors, and the pages in govsite's look."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from allauth.core import context as allauth_context
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.socialaccount.internal.flows.login import complete_login
from allauth.socialaccount.models import SocialAccount
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from govsite.accounts.models import OrgRole, TeamRole, User
from govsite.api import services as api_services
from tests.accounts.mfa_helpers import (
    PASSWORD,
    enrol_totp,
    sign_in,
    signed_in_with_second_factor,
    totp_code,
    with_password,
)
from tests.accounts.test_sso import _request, sociallogin_for
from tests.audit.helpers import actions, new_events
from tests.factories import make_user

pytestmark = pytest.mark.django_db

HOME = reverse("home")
MFA_INDEX = reverse("mfa_index")


@pytest.fixture(autouse=True)
def mfa_required(settings):
    settings.MFA_REQUIRED = True
    # One step of clock drift either way, so a code computed at the end of a 30 s period still counts.
    settings.MFA_TOTP_TOLERANCE = 1
    # Every test signs in with a password: a fast hasher (Argon2's cost is not what these tests check).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def password_person(team, *, org_roles=(), team_role=None, email="pat@example.com") -> User:
    user = make_user(email=email, org_roles=org_roles, teams={team: team_role} if team_role else None)
    with_password(user)
    return user


# --- who must enrol -----------------------------------------------------------------------------------------

ROLES = {
    "admin": ({"org_roles": [OrgRole.ADMIN]}, True),
    "finance": ({"org_roles": [OrgRole.FINANCE]}, True),
    "approver": ({"team_role": TeamRole.APPROVER}, True),
    "auditor": ({"org_roles": [OrgRole.AUDITOR]}, False),
    "member": ({"team_role": TeamRole.MEMBER}, False),
}


@pytest.mark.parametrize("role", ROLES)
def test_a_role_that_requires_mfa_is_sent_to_enrol_before_using_the_console(role, team_a):
    fields, required = ROLES[role]
    person = password_person(team_a, **fields)
    client = Client()
    sign_in(client, person)
    response = client.get(reverse("key_list"))
    if required:
        assert response.status_code == 302 and response.url == MFA_INDEX
        page = client.get(MFA_INDEX)
        assert page.status_code == 200
        assert "Your role requires a second factor" in page.content.decode()
    else:
        assert response.status_code == 200


def test_with_the_setting_off_nobody_is_sent_to_enrol(settings, team_a):
    settings.MFA_REQUIRED = False
    admin = password_person(team_a, org_roles=[OrgRole.ADMIN])
    client = Client()
    sign_in(client, admin)
    assert client.get(reverse("key_list")).status_code == 200


def test_someone_who_must_enrol_can_still_enrol_and_sign_out(team_a):
    admin = password_person(team_a, org_roles=[OrgRole.ADMIN])
    client = Client()
    sign_in(client, admin)
    assert client.get(MFA_INDEX).status_code == 200
    # allauth asks for the password again before a factor is added; that page is open too.
    activate = client.get(reverse("mfa_activate_totp"))
    assert activate.status_code == 302 and activate.url.startswith(reverse("account_reauthenticate"))
    assert client.get(activate.url).status_code == 200
    assert client.post(reverse("account_logout")).status_code == 302
    assert client.get(reverse("key_list")).url.startswith(reverse("account_login"))


def test_enrolling_an_authenticator_app_through_the_pages_opens_the_console_and_is_audited(team_a):
    admin = password_person(team_a, org_roles=[OrgRole.ADMIN])
    client = Client()
    sign_in(client, admin)
    activate_url = reverse("mfa_activate_totp")
    reauth = client.post(f"{reverse('account_reauthenticate')}?next={activate_url}", {"password": PASSWORD})
    assert reauth.status_code == 302
    page = client.get(activate_url)
    assert page.status_code == 200
    secret = re.search(r'id="authenticator_secret">([A-Z2-7]+)<', page.content.decode()).group(1)
    # A wrong code: the field error, nothing stored.
    wrong = client.post(activate_url, {"code": "000000" if totp_code_for(secret) != "000000" else "111111"})
    assert wrong.status_code == 200 and "Incorrect code." in wrong.content.decode()
    with new_events() as events:
        done = client.post(activate_url, {"code": totp_code_for(secret)})
    assert done.status_code == 302 and done.url == reverse("mfa_view_recovery_codes")
    stored = Authenticator.objects.get(user=admin, type=Authenticator.Type.TOTP)
    assert secret not in str(stored.data), "the TOTP secret is stored encrypted, never as given"
    added = [e for e in events if e.action == "mfa.authenticator_added"]
    assert {e.data["type"] for e in added} == {"totp", "recovery_codes"}
    assert all(e.actor_id == admin.pk and e.target_id == str(admin.pk) for e in added)
    # The recovery codes are shown once.
    codes = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert "shown this once" in codes
    again = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert "shown this once" not in again and "were shown once" in again
    assert client.get(reverse("key_list")).status_code == 200


def totp_code_for(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_signing_in_asks_for_the_code_and_a_wrong_code_is_refused_and_audited(team_a):
    admin = password_person(team_a, org_roles=[OrgRole.ADMIN])
    enrol_totp(admin)
    client = Client()
    response = sign_in(client, admin, code=False)
    assert response.url == reverse("mfa_authenticate")
    assert client.get(HOME).url.startswith(reverse("account_login")), "not signed in before the code"
    with new_events() as events:
        wrong = client.post(reverse("mfa_authenticate"), {"code": "12345x"})
    assert wrong.status_code == 200 and "Incorrect code." in wrong.content.decode()
    assert actions(events) == ["mfa.code_refused"]
    ok = client.post(reverse("mfa_authenticate"), {"code": totp_code(admin)})
    assert ok.status_code == 302 and ok.url == HOME
    assert client.get(HOME).status_code == 200


def test_removing_a_factor_and_new_recovery_codes_are_audited(team_a):
    admin = password_person(team_a, org_roles=[OrgRole.ADMIN])
    client = signed_in_with_second_factor(admin)
    client.post(f"{reverse('account_reauthenticate')}?next={MFA_INDEX}", {"password": PASSWORD})
    with new_events() as events:
        assert client.post(reverse("mfa_generate_recovery_codes")).status_code == 302
    assert actions(events) == ["mfa.recovery_codes_regenerated"]
    with new_events() as events:
        assert client.post(reverse("mfa_deactivate_totp")).status_code == 302
    assert actions(events) == ["mfa.authenticator_removed", "mfa.authenticator_removed"]
    assert {e.data["type"] for e in events} == {"totp", "recovery_codes"}
    assert not Authenticator.objects.filter(user=admin).exists()
    # The role still requires a factor: back to enrolment.
    assert client.get(reverse("key_list")).url == MFA_INDEX


# --- SSO people rely on their identity provider -------------------------------------------------------------


def test_a_person_without_a_password_is_never_sent_to_enrol(team_a):
    admin = make_user(email="sso-admin@example.com", org_roles=[OrgRole.ADMIN])  # no usable password: SSO only
    client = Client()
    client.force_login(admin)
    response = client.get(reverse("key_list"))
    assert response.status_code == 200
    assert "Two-factor" not in response.content.decode(), "nothing to manage for an SSO-only person"


def sso_session(user) -> Client:
    """allauth's whole social-login flow for a returning SSO person; the client carries its session."""
    SocialAccount.objects.get_or_create(user=user, provider="openid_connect", uid=f"sub-{user.email}")
    request = _request()
    with allauth_context.request_context(request):
        response = complete_login(request, sociallogin_for(User(email=user.email), []))
    request.session.save()
    client = Client()
    client.cookies[django_settings.SESSION_COOKIE_NAME] = request.session.session_key
    client.sso_response = response
    return client


def test_an_sso_login_is_not_asked_for_a_code_nor_to_enrol_even_with_a_password_and_a_factor(team_a):
    admin = password_person(team_a, org_roles=[OrgRole.ADMIN])
    enrol_totp(admin)
    client = sso_session(admin)
    assert client.sso_response.status_code == 302
    assert client.sso_response.url == HOME, "the identity provider's login is not followed by govsite's code page"
    page = client.get(reverse("key_list"))
    assert page.status_code == 200
    assert "Two-factor" not in page.content.decode()
    # The same person through the password form is asked for the code.
    assert sign_in(Client(), admin, code=False).url == reverse("mfa_authenticate")


def test_an_sso_admin_without_a_factor_uses_the_console(team_a):
    admin = password_person(team_a, org_roles=[OrgRole.ADMIN])
    client = sso_session(admin)
    assert client.get(reverse("key_list")).status_code == 200


# --- the API ------------------------------------------------------------------------------------------------


def test_a_session_api_call_of_someone_who_must_enrol_is_refused_but_their_token_is_not(team_a):
    admin = password_person(team_a, org_roles=[OrgRole.ADMIN])
    client = Client()
    sign_in(client, admin)
    response = client.get(reverse("api_me"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "second_factor_enrolment_required"
    expires = timezone.now() + timedelta(days=30)
    _, secret = api_services.api_token_create(user=admin, name="ci", scope="read", expires_at=expires)
    assert Client().get(reverse("api_me"), HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


# --- the pages ----------------------------------------------------------------------------------------------

PAGES = ["mfa_index", "mfa_activate_totp", "mfa_add_webauthn", "mfa_list_webauthn", "mfa_reauthenticate"]


@pytest.mark.parametrize("name", PAGES)
def test_the_pages_have_govsite_s_look_and_no_inline_script(name, settings, team_a):
    settings.MFA_REQUIRED = False
    admin = password_person(team_a, org_roles=[OrgRole.ADMIN])
    client = signed_in_with_second_factor(admin)
    client.post(f"{reverse('account_reauthenticate')}?next={MFA_INDEX}", {"password": PASSWORD})
    response = client.get(reverse(name), follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="topbar"' in html and "css/site.css" in html
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, f"inline script on {name}: {tag}"


@pytest.mark.parametrize("name", ["mfa_index", "mfa_activate_totp", "mfa_add_webauthn", "mfa_reauthenticate"])
def test_anonymous_visitors_are_sent_to_sign_in(name, client):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))


def test_nobody_removes_someone_else_s_security_key(team_a):
    owner = password_person(team_a, org_roles=[OrgRole.ADMIN], email="owner@example.com")
    key = Authenticator.objects.create(user=owner, type=Authenticator.Type.WEBAUTHN, data={"name": "key"})
    other = password_person(team_a, org_roles=[OrgRole.ADMIN], email="other@example.com")
    client = signed_in_with_second_factor(other)
    client.post(f"{reverse('account_reauthenticate')}?next={MFA_INDEX}", {"password": PASSWORD})
    assert client.post(reverse("mfa_remove_webauthn", args=[key.pk])).status_code == 404
    assert Authenticator.objects.filter(pk=key.pk).exists()
