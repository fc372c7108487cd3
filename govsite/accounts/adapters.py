"""allauth hooks: who may sign up, SSO groups → teams and roles, and the login audit trail."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction

import audit
from govsite.accounts import services
from govsite.web import client_ip


def groups_from_sociallogin(sociallogin) -> list[str]:
    """The groups claim, from userinfo or else the ID token (OIDC_GROUPS_CLAIM names it)."""
    claim = settings.OIDC_GROUPS_CLAIM
    extra = sociallogin.account.extra_data or {}
    for source in (extra.get("userinfo"), extra.get("id_token"), extra):
        if isinstance(source, dict) and claim in source:
            value = source[claim]
            if isinstance(value, str):
                return [value]
            if isinstance(value, list | tuple):
                return [str(v) for v in value]
    return []


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUP and not settings.SOCIALACCOUNT_ONLY

    def get_client_ip(self, request) -> str:
        # The address allauth's per-IP rate limits count under: X-Forwarded-For only from TRUSTED_PROXIES,
        # the same answer the audit log records.
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine the client's address.")
        return ip

    def get_login_stages(self) -> list[str]:
        # allauth's "enter your code" stage, skipped for SSO logins (govsite.accounts.mfa).
        return [
            "govsite.accounts.mfa.SsoExemptAuthenticateStage"
            if stage == "allauth.mfa.stages.AuthenticateStage"
            else stage
            for stage in super().get_login_stages()
        ]

    def authentication_failed(self, request, **credentials: Any) -> None:
        attempted = str(credentials.get("email") or credentials.get("username") or "")[:254]
        with transaction.atomic():
            audit.record(
                action="user.login_failed",
                actor_label=attempted or "unknown",
                data={"email": attempted, "method": "password"},
            )

    def pre_login(self, request, user, **kwargs):
        refused = super().pre_login(request, user, **kwargs)
        sociallogin = (kwargs.get("signal_kwargs") or {}).get("sociallogin")
        method = f"sso:{sociallogin.account.provider}" if sociallogin else "password"
        if refused is not None:
            with transaction.atomic():
                audit.record(
                    action="user.login_refused",
                    actor_label=user.email,
                    target=user,
                    data={"reason": "deactivated", "method": method},
                )
            return refused
        with transaction.atomic():
            data: dict[str, Any] = {"method": method}
            if sociallogin is not None:
                groups = groups_from_sociallogin(sociallogin)
                data["groups"] = groups
                data["changes"] = services.sso_sync_groups(user=user, groups=groups)
            audit.record(action="user.login", actor=user, target=user, data=data)
        return None


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        # The identity provider decides who works here: a first SSO login creates the person.
        return True

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        name = " ".join(p for p in (data.get("first_name"), data.get("last_name")) if p) or data.get("name", "")
        user.full_name = (name or "")[:200]
        user.email = (user.email or "").lower()
        return user
