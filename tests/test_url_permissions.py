"""Every named URL has a permission row, and every row passes the four checks (tests/permissions.py)."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.permissions import (
    all_cases,
    check_allowed_roles_succeed,
    check_anonymous_is_sent_to_login,
    check_other_teams_object_is_not_found,
    check_wrong_roles_are_forbidden,
)

# Third-party sites with their own access rules (allauth, Django admin) and the unauthenticated health checks.
# The API and SCIM are token-authenticated and have their own tables (tests/api/, tests/scim/); /metrics
# answers a token or a network, never a person (tests/ops/test_metrics.py).
EXCLUDED_PREFIXES = ("accounts/", "admin/", "api/", "scim/")
EXCLUDED_NAMES = {"healthz", "readyz", "metrics"}

CASES = all_cases()


def _named_urls(patterns=None, prefix: str = "", namespace: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern).lstrip("^")  # re_path patterns start with ^
        if route.startswith(EXCLUDED_PREFIXES):
            continue
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _named_urls(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(namespace + pattern.name)
    return names - EXCLUDED_NAMES


def test_every_named_url_has_a_permission_row():
    missing = sorted(_named_urls() - {case.name for case in CASES})
    assert not missing, (
        f"URLs without a permission row: {missing}. Add a UrlCase for each in tests/url_cases.py "
        "or the app's tests/<app>/url_cases.py."
    )


def test_every_permission_row_names_a_url_that_exists():
    stale = sorted({case.name for case in CASES} - _named_urls())
    assert not stale, f"permission rows for URLs that do not exist (renamed or removed?): {stale}"


def test_every_row_that_changes_state_says_what_it_changes():
    vague = sorted(case.id for case in CASES if case.is_write and case.effect is None)
    assert not vague, f"rows that write but name no `effect` (what the allowed call changes): {vague}"


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_anonymous_visitor_is_sent_to_login(case, world):
    check_anonymous_is_sent_to_login(case, world)


@pytest.mark.django_db
@pytest.mark.parametrize("case", [c for c in CASES if c.denied], ids=lambda c: c.id)
def test_role_without_permission_gets_403_and_changes_nothing(case, world):
    check_wrong_roles_are_forbidden(case, world)


@pytest.mark.django_db
@pytest.mark.parametrize("case", [c for c in CASES if c.checks_other_team], ids=lambda c: c.id)
def test_another_teams_object_is_not_found(case, world):
    check_other_teams_object_is_not_found(case, world)


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_allowed_role_gets_the_page_or_action(case, world):
    check_allowed_roles_succeed(case, world)
