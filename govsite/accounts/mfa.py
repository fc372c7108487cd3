"""Multi-factor authentication: who must enrol, when a second factor is asked for again, and its audit trail.

allauth.mfa does the factors themselves (TOTP, WebAuthn security keys, recovery codes), the login stage and
the reauthentication pages; govsite adds the policy:

- With `MFA_REQUIRED`, a person holding one of `MFA_REQUIRED_ROLES` who signed in with a password and has no
  second factor is sent to enrol (`MfaEnrolmentMiddleware`) before using the console; enrolment and sign-out
  stay open.
- `second_factor_required` guards the sensitive actions (deciding key requests and budget increases,
  changing roles or policy, exporting evidence): when the last second factor of the session is older than
  `MFA_STEP_UP_SECONDS`, the request is suspended (allauth keeps the POST), the person confirms with their
  authenticator app, a recovery code or a security key, and the request is carried out.
- People who sign in through SSO rely on their identity provider: a person without a usable password, or a
  session that began with an SSO login, is never asked here (not at login, not for the step-up).

When a second factor was last given is read from allauth's record of the session's authentications (a
"mfa" entry at the login stage or at each reauthentication), so there is one clock, allauth's.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import time
from functools import wraps

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.internal.flows import reauthentication
from allauth.account.internal.flows.login import get_authentication_records
from allauth.mfa import signals
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from allauth.mfa.stages import AuthenticateStage
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

import audit
from govsite.accounts import permissions

SECOND_FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)
ENROL_MESSAGE = "Your role requires a second factor: add an authenticator app or a security key to continue."
STEP_UP_MESSAGE = "Confirm it is you with your second factor to continue."


# --- who is asked -------------------------------------------------------------------------------------------


def _records(request: HttpRequest) -> list[dict]:
    return get_authentication_records(request, request.user)


def signed_in_with_sso(request: HttpRequest) -> bool:
    """True when this session began with an SSO login, or the person has no password to sign in with."""
    user = request.user
    if not user.has_usable_password():
        return True
    for record in _records(request):
        if record.get("method") in ("password", "socialaccount"):
            return record["method"] == "socialaccount"
    return False


def has_second_factor(user) -> bool:
    return Authenticator.objects.filter(user_id=user.pk, type__in=SECOND_FACTORS).exists()


def must_enrol(request: HttpRequest) -> bool:
    """A password session of a person whose role requires MFA, with no second factor yet."""
    user = request.user
    return bool(
        settings.MFA_REQUIRED
        and user.is_authenticated
        and permissions.mfa_required_by_role(user)
        and not signed_in_with_sso(request)
        and not has_second_factor(user)
    )


def last_second_factor_at(request: HttpRequest) -> float | None:
    """When this session last gave a second factor (at the login stage or a reauthentication), epoch seconds."""
    return max((r["at"] for r in _records(request) if r.get("method") == "mfa" and "at" in r), default=None)


def step_up_needed(request: HttpRequest) -> bool:
    """With MFA_REQUIRED: a password session of someone with a second factor, last given too long ago."""
    user = request.user
    if not (settings.MFA_REQUIRED and user.is_authenticated) or signed_in_with_sso(request):
        return False
    if not has_second_factor(user):
        return False  # nothing to ask for: must_enrol covers those whose role requires one
    at = last_second_factor_at(request)
    return at is None or time.time() - at >= settings.MFA_STEP_UP_SECONDS


def step_up_url(request: HttpRequest) -> str:
    """allauth's page for the person's second factor (never the password one): a code, else a security key."""
    methods = get_account_adapter(request).get_reauthentication_methods(request.user)
    urls = [m["url"] for m in methods if m["id"].startswith("mfa_reauthenticate")]
    return urls[0] if urls else reverse("mfa_index")


# --- the guard ----------------------------------------------------------------------------------------------


def step_up_response(request: HttpRequest):
    """None when the request may go on; else where the person goes first (enrol, or confirm the factor).

    A suspended POST is kept in the session by allauth and carried out once the factor is confirmed."""
    if must_enrol(request):
        messages.info(request, ENROL_MESSAGE)
        return redirect("mfa_index")
    if step_up_needed(request):
        messages.info(request, STEP_UP_MESSAGE)
        return reauthentication.suspend_request(request, step_up_url(request))
    return None


def second_factor_required(view=None, *, methods: tuple[str, ...] = ("POST",)):
    """Ask for the second factor again before `methods` requests (POST: the change, not the form) when the last
    one is older than MFA_STEP_UP_SECONDS. Put it under the role check, right above the view:

        @require_POST
        @role_required(permissions.has_key_approval_queue, "...")
        @second_factor_required
        def approval_decide(request, pk): ...

    Use `methods=("GET", "POST")` for a view whose GET hands something out (an evidence download)."""

    def decorator(view_func):
        @wraps(view_func)
        def wrapped(request, *args, **kwargs):
            if request.method in methods:
                response = step_up_response(request)
                if response is not None:
                    return response
            return view_func(request, *args, **kwargs)

        wrapped.second_factor_required = methods  # read by the tests that list the guarded views
        return wrapped

    return decorator(view) if view is not None else decorator


class MfaEnrolmentMiddleware:
    """People whose role requires a second factor enrol before anything else; the enrolment pages, sign-out,
    static files and token-authenticated API calls stay open."""

    OPEN_PREFIXES = ("/accounts/", "/static/", "/healthz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.MFA_REQUIRED and not request.path.startswith(self.OPEN_PREFIXES):
            if request.path.startswith("/api/") and request.headers.get("Authorization"):
                return self.get_response(request)  # a personal API token: not a browser session
            if must_enrol(request):
                if request.path.startswith("/api/v1/"):
                    return JsonResponse(
                        {"error": {"code": "second_factor_enrolment_required", "message": ENROL_MESSAGE}}, status=403
                    )
                messages.info(request, ENROL_MESSAGE)
                return redirect("mfa_index")
        return self.get_response(request)


# --- allauth hooks ------------------------------------------------------------------------------------------


class SsoExemptAuthenticateStage(AuthenticateStage):
    """allauth's "enter your code" login stage, skipped for SSO logins: the identity provider asked already."""

    def _should_handle(self, request: HttpRequest) -> bool:
        records = get_authentication_records(request, self.login.user) if self.login.user else []
        if any(r.get("method") == "socialaccount" for r in records):
            return False
        return super()._should_handle(request)


def _fernet() -> Fernet:
    material = (settings.KEY_ENCRYPTION_SECRET or settings.SECRET_KEY).encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"govsite-mfa-secret:" + material).digest()))


class MfaAdapter(DefaultMFAAdapter):
    """TOTP secrets and recovery-code seeds are stored encrypted (allauth stores them as given)."""

    def encrypt(self, text: str) -> str:
        return _fernet().encrypt(text.encode()).decode()

    def decrypt(self, encrypted_text: str) -> str:
        return _fernet().decrypt(encrypted_text.encode()).decode()


# --- the audit trail ----------------------------------------------------------------------------------------
# Written from the Authenticator rows' own save and delete, so each event commits or rolls back with the change
# (allauth sends its authenticator_added/removed/reset signals only after the commit). allauth's pages run
# through `mfa_page` (govsite.accounts.mfa_urls): one transaction per changing page, and which page is at work, so new
# recovery codes replacing the old ones are one "regenerated" event, not a removal and an addition.

_page: contextvars.ContextVar[tuple[str, HttpRequest] | None] = contextvars.ContextVar("mfa_page", default=None)
REGENERATE_PAGE = "mfa_generate_recovery_codes"


# The pages that add, change or remove a factor. Not the sign-in and confirmation pages: those carry out the
# request they suspended (an approval...), whose services open durable transactions of their own.
CHANGING_PAGES = frozenset(
    {
        "mfa_activate_totp",
        "mfa_deactivate_totp",
        "mfa_add_webauthn",
        "mfa_remove_webauthn",
        "mfa_edit_webauthn",
        REGENERATE_PAGE,
    }
)


def mfa_page(name: str, view):
    """allauth's page `name`, known to the audit receivers below; one transaction for a page that changes
    the person's factors."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        token = _page.set((name, request))
        try:
            if name in CHANGING_PAGES:
                with transaction.atomic():
                    return view(request, *args, **kwargs)
            return view(request, *args, **kwargs)
        finally:
            _page.reset(token)

    return wrapped


def _record(action: str, authenticator: Authenticator, **data) -> None:
    page, request = _page.get() or ("", None)
    actor = request.user if request is not None and request.user.is_authenticated else None
    with transaction.atomic():
        audit.record(
            action=action,
            actor=actor,
            target_type="accounts.user",
            target_id=authenticator.user_id,
            target_label=str(authenticator.user),
            data={"type": authenticator.type, "authenticator_id": authenticator.pk, **data},
        )


def _regenerating(authenticator: Authenticator) -> bool:
    page = _page.get()
    return page is not None and page[0] == REGENERATE_PAGE and authenticator.type == Authenticator.Type.RECOVERY_CODES


@receiver(post_save, sender=Authenticator)
def _added(sender, instance: Authenticator, created: bool, **kwargs):
    if created:
        _record("mfa.recovery_codes_regenerated" if _regenerating(instance) else "mfa.authenticator_added", instance)


@receiver(post_delete, sender=Authenticator)
def _removed(sender, instance: Authenticator, **kwargs):
    if not _regenerating(instance):  # the old codes, replaced: the new ones' event says so
        _record("mfa.authenticator_removed", instance)


@receiver(signals.authentication_failed)
def _failed(sender, request, user, authenticator, reauthentication=False, **kwargs):
    _record("mfa.code_refused", authenticator, step_up=bool(reauthentication))
