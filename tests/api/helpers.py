"""Helpers for API tests: tokens written straight to the database (no audit event), clients that use them."""

from __future__ import annotations

import itertools
import json
import secrets
from datetime import timedelta

from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from govsite.api.models import ApiToken
from govsite.api.services import TOKEN_PREFIX, hash_api_token

_n = itertools.count(1)


def make_token(user, *, scope: str = "write", expires_in: timedelta = timedelta(days=30), **fields) -> str:
    """A token for `user`; returns its secret."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    ApiToken.objects.create(
        user=user,
        name=f"test token {next(_n)}",
        token_hash=hash_api_token(secret),
        prefix=secret[:12],
        scope=scope,
        created_at=fields.pop("created_at", now - timedelta(days=1)),
        expires_at=now + expires_in,
        **fields,
    )
    return secret


def token_client(user, *, scope: str = "write", **fields) -> Client:
    """A client that sends `Authorization: Bearer <a new token of user>` and no cookie."""
    return Client(headers={"Authorization": f"Bearer {make_token(user, scope=scope, **fields)}"})


def call(client: Client, method: str, url: str, body=None):
    """JSON in, like an API client (no body for GET)."""
    if method == "get":
        return client.get(url)
    data = None if body is None else json.dumps(body)
    return getattr(client, method)(url, data=data, content_type="application/json")


API_PREFIX = "api/v1/"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def api_operations(patterns=None, prefix: str = "") -> set[tuple[str, str]]:
    """(URL name, method) of every endpoint under /api/v1/, from the view classes themselves."""
    operations: set[tuple[str, str]] = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route.startswith(API_PREFIX) or API_PREFIX.startswith(route):
                operations |= api_operations(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith(API_PREFIX):
            view_class = getattr(pattern.callback, "view_class", None)
            if view_class is None:
                continue  # the JSON 404 for unknown addresses: not an endpoint
            assert pattern.name and pattern.name.startswith("api_"), f"/{route} needs a name starting with api_"
            operations |= {(pattern.name, m) for m in HTTP_METHODS if hasattr(view_class, m)}
    return operations
