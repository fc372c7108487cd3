"""Who is calling the API: a personal token (`Authorization: Bearer gst_...`) or the browser's session.

Session calls keep Django's CSRF protection (DRF's SessionAuthentication enforces it for writes).
A token acts as its person, never beyond their permissions, and a read token never writes.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework import permissions as drf_permissions

from govsite.accounts import mfa, permissions
from govsite.api import services
from govsite.api.errors import SecondFactorRequired
from govsite.api.models import ApiToken
from govsite.web import client_ip

REALM = 'Bearer realm="govsite-api"'


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return None  # not ours: the session may still authenticate the call
        try:
            secret = value.strip().decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The bearer token is not valid ASCII.") from exc
        if not secret or " " in secret:
            raise exceptions.AuthenticationFailed("Send exactly one token: Authorization: Bearer gst_...")
        try:
            token = services.api_token_authenticate(
                secret=secret, method=request.method, path=request.path, source=client_ip(request)
            )
        except services.ApiTokenRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        return token.user, token

    def authenticate_header(self, request):
        return REALM


class TokenScopeAllows(drf_permissions.BasePermission):
    """A read-only token used for a write is refused (403) and the refusal audited."""

    message = "This API token is read-only; use a token with the write scope."

    def has_permission(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        write = request.method not in drf_permissions.SAFE_METHODS
        if permissions.api_token_permits(token, write=write):
            return True
        services.api_token_refuse(
            token=token, reason="read_only", method=request.method, path=request.path, source=client_ip(request)
        )
        return False


class SecondFactorRecent(drf_permissions.BasePermission):
    """The pages' step-up (govsite.accounts.mfa.second_factor_required) for a browser session's API call: with
    MFA_REQUIRED, deciding or exporting through the API from a session whose last second factor is older than
    MFA_STEP_UP_SECONDS is a 403 `second_factor_required`. A personal API token is not asked: it is a bearer
    credential minted on the token page, which itself asks for a recent second factor."""

    def has_permission(self, request, view):
        if isinstance(request.auth, ApiToken):
            return True
        if request.method not in getattr(view, "second_factor_methods", ()):
            return True
        if mfa.must_enrol(request) or mfa.step_up_needed(request):
            raise SecondFactorRequired()
        return True


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token from Settings → API tokens (`gst_...`). Read tokens only read.",
        }
