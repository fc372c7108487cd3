"""Signing in with a second factor as a person does: the password form, then allauth's code page; and the
session's record of when the second factor was last given, aged as time would age it."""

from __future__ import annotations

import time

from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa.adapter import get_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

PASSWORD = "correct horse battery staple"
LOGIN = reverse("account_login")


def with_password(user) -> None:
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])


def enrol_totp(user) -> None:
    """An authenticator app and recovery codes, as allauth stores them (the secret through our adapter)."""
    TOTP.activate(user, generate_totp_secret())
    RecoveryCodes.activate(user)


def totp_code(user) -> str:
    secret = get_adapter().decrypt(Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).data["secret"])
    # allauth refuses a code used twice within its 30 s (a cache entry); a test signs in and confirms again
    # within one period, and the replay protection is not what these tests check.
    cache.clear()
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def sign_in(client: Client, user, *, code: bool = True):
    """The password form; when allauth then asks for a code (the login stage), the authenticator app's."""
    response = client.post(LOGIN, {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    if code and response.url == reverse("mfa_authenticate"):
        response = client.post(response.url, {"code": totp_code(user)})
        assert response.status_code == 302, response.content.decode()[:2000]
    return response


def age_session(client: Client, seconds: float) -> None:
    """Move every authentication this session recorded `seconds` into the past."""
    session = client.session
    records = session[AUTHENTICATION_METHODS_SESSION_KEY]
    for record in records:
        record["at"] -= seconds
    session[AUTHENTICATION_METHODS_SESSION_KEY] = records
    session.save()


def signed_in_with_second_factor(user) -> Client:
    with_password(user)
    enrol_totp(user)
    client = Client()
    response = sign_in(client, user)
    assert response.url == reverse("home"), response.url
    return client
