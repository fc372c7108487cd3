"""The permission test base every URL goes through (NetBox-style).

Each URL gets one or more `UrlCase` rows. For every row the suite checks:

* anonymous            → redirected to the login page;
* a role not allowed   → 403 (and, for a write, nothing audited);
* another team's object→ 404 (rows marked `scoped`, or with an `unreachable` object);
* an allowed role      → 200 (or 302 for a POST action, which writes an audit event), and a row that
  changes state names its `effect`: what the call made true in the database (false before it), e.g.
  the request is approved, the key revoked, the budget raised.

Rows live in `tests/url_cases.py` (the project's own URLs) and in `tests/<app>/url_cases.py`
for each app: such a module calls `register(UrlCase(...), ...)` and is found automatically.
`tests/test_url_permissions.py` fails if a named URL has no row.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from govsite.accounts.models import Team, User

# The people every row is checked against. Org roles see the whole org; the others are bound to one team.
ADMIN, FINANCE, AUDITOR = "admin", "finance", "auditor"
APPROVER_A, MEMBER_A, MEMBER_B = "approver_a", "member_a", "member_b"
ROLES: tuple[str, ...] = (ADMIN, FINANCE, AUDITOR, APPROVER_A, MEMBER_A, MEMBER_B)
ALL_ROLES = frozenset(ROLES)
ORG_ROLES = frozenset({ADMIN, FINANCE, AUDITOR})
TEAM_OF_ROLE = {APPROVER_A: "a", MEMBER_A: "a", MEMBER_B: "b"}


@dataclass
class World:
    """Two teams and one person per role (built by the `world` fixture in conftest)."""

    team_a: Team
    team_b: Team
    users: dict[str, User]

    def client(self, role: str | None) -> Client:
        """A fresh client, logged in as the person with that role (None: anonymous)."""
        client = Client()
        if role is not None:
            client.force_login(self.users[role])
        return client

    def home_team(self, role: str) -> Team:
        """The team whose objects this role may reach (org roles: team A, which they see anyway)."""
        return self.team_b if TEAM_OF_ROLE.get(role) == "b" else self.team_a

    def other_team(self, role: str) -> Team | None:
        """A team this role must not reach, or None for org roles (they see every team)."""
        bound = TEAM_OF_ROLE.get(role)
        if bound is None:
            return None
        return self.team_b if bound == "a" else self.team_a


KwargsFactory = Callable[[World, Team], dict[str, Any]]


@dataclass(frozen=True)
class Call:
    """One allowed call as it was made: by whom, for which team, with which URL kwargs and body."""

    world: World
    team: Team
    user: User
    kwargs: dict[str, Any]
    data: dict[str, Any]

    @property
    def pk(self) -> Any:
        return self.kwargs["pk"]


# What an allowed call makes true, read back from the database.
Effect = Callable[[Call], bool]


@dataclass(frozen=True)
class UrlCase:
    """One permission row: a URL name, how to call it, and who may."""

    name: str
    # URL kwargs for an object that belongs to the given team (None: the URL takes no kwargs).
    kwargs: KwargsFactory | None = None
    method: str = "get"
    allowed: frozenset[str] = ALL_ROLES
    # The URL takes a team-owned object: a team-bound role asking for another team's object gets 404.
    scoped: bool = False
    # URL kwargs that no allowed role may reach (e.g. a membership of team B under team A's slug,
    # or an object that does not exist): 404 for every allowed role.
    unreachable: Callable[[World], dict[str, Any]] | None = None
    # POST body for the given team's object.
    data: KwargsFactory | None = None
    # Status for an allowed role; default 200 for GET, 302 for POST.
    ok_status: int | None = None
    # Whether an allowed call changes state (and so must write an audit event); default: POST does.
    writes: bool | None = None
    # The caller's own credential (a personal API token): every active person may make and revoke
    # theirs, auditors included (a read token is how an auditor scripts evidence exports).
    personal: bool = False
    # What a role not allowed gets: 403, or 404 where the object is looked up in the caller's own scope
    # (a personal token: someone else's is not found, like any object outside one's scope).
    refused_status: int = 403
    # What an allowed call makes true (false before it); every row that writes names one.
    effect: Effect | None = None

    @property
    def id(self) -> str:
        return f"{self.name}[{self.method.upper()}]"

    @property
    def expected_ok(self) -> int:
        if self.ok_status is not None:
            return self.ok_status
        return 302 if self.method == "post" else 200

    @property
    def is_write(self) -> bool:
        return self.method == "post" if self.writes is None else self.writes

    @property
    def denied(self) -> tuple[str, ...]:
        return tuple(role for role in ROLES if role not in self.allowed)

    @property
    def checks_other_team(self) -> bool:
        return (self.scoped and any(role in TEAM_OF_ROLE for role in self.allowed)) or self.unreachable is not None

    def url(self, world: World, team: Team) -> str:
        return reverse(self.name, kwargs=self.kwargs(world, team) if self.kwargs else None)

    def call(self, client: Client, world: World, team: Team, url: str | None = None):
        url = url or self.url(world, team)
        if self.method == "post":
            return client.post(url, self.data(world, team) if self.data else {})
        return getattr(client, self.method)(url)


# --- the registry ------------------------------------------------------------------------------

_REGISTRY: list[UrlCase] = []


def register(*cases: UrlCase) -> tuple[UrlCase, ...]:
    """Add rows to the table (called at import time by `tests/url_cases.py` and `tests/<app>/url_cases.py`)."""
    for case in cases:
        if any(existing.id == case.id for existing in _REGISTRY):
            raise ValueError(f"{case.id} has two permission rows")
        _REGISTRY.append(case)
    return cases


def all_cases() -> list[UrlCase]:
    """Every registered row, after importing every `url_cases.py` module under tests/."""
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("url_cases.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if all((root.parent.joinpath(*parts[:i]) / "__init__.py").exists() for i in range(1, len(parts))):
            importlib.import_module(".".join(parts))
    return sorted(_REGISTRY, key=lambda case: case.id)


# --- the four checks ---------------------------------------------------------------------------


def _events() -> int:
    return AuditEvent.objects.count()


def check_anonymous_is_sent_to_login(case: UrlCase, world: World) -> None:
    before = _events()
    url = case.url(world, world.team_a)
    response = case.call(world.client(None), world, world.team_a, url)
    login = reverse("account_login")
    assert response.status_code == 302, f"anonymous {case.id}: {response.status_code}, expected a login redirect"
    assert response.url.startswith(f"{login}?next="), f"anonymous {case.id} went to {response.url}, not {login}"
    assert _events() == before, f"anonymous {case.id} wrote audit events"


def check_wrong_roles_are_forbidden(case: UrlCase, world: World) -> None:
    for role in case.denied:
        before = _events()
        response = case.call(world.client(role), world, world.home_team(role))
        expected = case.refused_status
        assert response.status_code == expected, f"{role} on {case.id}: {response.status_code}, expected {expected}"
        assert _events() == before, f"{role} was refused {case.id} but audit events were written"


def check_other_teams_object_is_not_found(case: UrlCase, world: World) -> None:
    for role in case.allowed:
        if case.unreachable is not None:
            before = _events()
            url = reverse(case.name, kwargs=case.unreachable(world))
            response = case.call(world.client(role), world, world.home_team(role), url)
            assert response.status_code == 404, f"{role} on unreachable {case.id}: {response.status_code}"
            assert _events() == before, f"{role} got 404 on {case.id} but audit events were written"
        other = world.other_team(role)
        if case.scoped and other is not None:
            before = _events()
            url = case.url(world, other)
            response = case.call(world.client(role), world, other, url)
            assert response.status_code == 404, f"{role} on {other.slug}'s {case.id}: {response.status_code}"
            assert _events() == before, f"{role} got 404 on {case.id} but audit events were written"


def check_allowed_roles_succeed(case: UrlCase, world: World) -> None:
    login = reverse("account_login")
    for role in case.allowed:
        team = world.home_team(role)
        kwargs = case.kwargs(world, team) if case.kwargs else {}
        data = case.data(world, team) if case.data else {}
        done = Call(world, team, world.users[role], kwargs, data)
        if case.effect is not None:
            assert not case.effect(done), f"{role} on {case.id}: its effect already holds before the call"
        before = _events()
        url = reverse(case.name, kwargs=kwargs or None)
        client = world.client(role)
        response = client.post(url, data) if case.method == "post" else getattr(client, case.method)(url)
        assert response.status_code == case.expected_ok, (
            f"{role} on {case.id}: {response.status_code}, expected {case.expected_ok}"
            + (
                f"; form errors {response.context['form'].errors}"
                if response.context and "form" in response.context
                else ""
            )
        )
        if response.status_code == 302:
            assert not response.url.startswith(login), f"{role} on {case.id} was sent to the login page"
        if case.is_write:
            assert _events() > before, f"{role} changed state through {case.id} but no audit event was written"
        if case.effect is not None:
            assert case.effect(done), f"{role} on {case.id}: answered {response.status_code} but changed nothing"


def check_url_case(case: UrlCase, world: World) -> None:
    """All four checks for one row (for app test modules that want a single call)."""
    check_anonymous_is_sent_to_login(case, world)
    check_wrong_roles_are_forbidden(case, world)
    if case.checks_other_team:
        check_other_teams_object_is_not_found(case, world)
    check_allowed_roles_succeed(case, world)
