"""Permission rows for the SCIM token pages (Settings → SCIM); see tests/permissions.py for the checks.

The SCIM API itself (/scim/v2/..., URL names "scim_api_*") is authenticated by bearer token, not by a
session: tests/scim/test_scim_access.py checks that.
"""

from __future__ import annotations

import itertools
import secrets

from govsite.accounts.models import ScimToken
from govsite.accounts.services import hash_scim_token
from tests.permissions import ADMIN, UrlCase, register

ADMIN_ONLY = frozenset({ADMIN})
MISSING = 987_654_321
_n = itertools.count(1)


def _token(world, team):
    secret = "scim_" + secrets.token_urlsafe(16)
    token = ScimToken.objects.create(name=f"idp {next(_n)}", token_hash=hash_scim_token(secret), last4=secret[-4:])
    return {"pk": token.pk}


def _new_token_form(world, team):
    return {"name": f"identity provider {next(_n)}"}


register(
    UrlCase("scim_tokens", allowed=ADMIN_ONLY),
    # The new secret is shown on the page itself (200), once.
    UrlCase(
        "scim_tokens",
        method="post",
        data=_new_token_form,
        allowed=ADMIN_ONLY,
        ok_status=200,
        effect=lambda c: ScimToken.objects.filter(name=c.data["name"]).exists(),
    ),
    UrlCase("scim_token_revoke", kwargs=_token, allowed=ADMIN_ONLY, unreachable=lambda world: {"pk": MISSING}),
    UrlCase(
        "scim_token_revoke",
        method="post",
        kwargs=_token,
        allowed=ADMIN_ONLY,
        unreachable=lambda world: {"pk": MISSING},
        effect=lambda c: ScimToken.objects.get(pk=c.pk).revoked_at is not None,
    ),
)
