"""A hand-built org whose adoption figures are known (`adoption_world`), and a month of mixed traffic for the
cost dashboards (`cost_world`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from govsite.accounts.models import Membership, Team, TeamRole, User
from keys.models import KeyKind, ModelPolicy
from tests.adoption.builders import PROVISIONED, at, book, spend
from tests.factories import TeamFactory, VirtualKeyFactory, make_user
from tests.keys.conftest import classification
from tests.permissions import APPROVER_A, MEMBER_A, MEMBER_B

# The report of as_of 2026-11-23 (a Monday) covers the 12 ISO weeks 2026-W36 .. 2026-W47 (Aug 31 – Nov 22).
AS_OF = date(2026, 11, 23)
D = date


@dataclass
class AdoptionWorld:
    five: Team  # six people: shown
    four: Team  # four people: hidden
    people: dict[str, User]
    keys: dict


def _since_january(team: Team) -> None:
    Membership.objects.filter(team=team).update(created_at=datetime(2026, 1, 2, tzinfo=UTC))


@pytest.fixture
def adoption_world(db) -> AdoptionWorld:
    """Team “Five” has p1..p6 (p6 never uses a personal key); team “Four” has q1..q3 and p5 (in two teams).

    p3 is deactivated on Wednesday 2026-11-04 (W45). p1's only request of W44 is on Sunday 2026-11-01 at
    23:30 UTC, and its first of W45 on Monday 2026-11-02 at 00:05 UTC: the ISO week boundary.
    """
    five = TeamFactory(name="Five", slug="five")
    four = TeamFactory(name="Four", slug="four")
    people = {
        name: make_user(email=f"{name}@example.com", teams={five: TeamRole.MEMBER})
        for name in ("p1", "p2", "p3", "p4", "p5", "p6")
    }
    for name in ("q1", "q2", "q3"):
        people[name] = make_user(email=f"{name}@example.com", teams={four: TeamRole.MEMBER})
    Membership.objects.create(user=people["p5"], team=four, role=TeamRole.MEMBER)
    _since_january(five)
    _since_january(four)

    provisioned = D(2026, 10, 1)
    keys = {
        name: VirtualKeyFactory(team=five, owner=people[name], provisioned_at=at(provisioned, 9))
        for name in ("p1", "p2", "p3", "p4", "p5", "p6")
    }
    keys["p6_old"] = VirtualKeyFactory(
        team=five, owner=people["p6"], provisioned_at=at(D(2026, 9, 1), 9)
    )  # used once, on the next day
    keys["p5_four"] = VirtualKeyFactory(team=four, owner=people["p5"], provisioned_at=at(provisioned, 9))
    keys["q1"] = VirtualKeyFactory(team=four, owner=people["q1"], provisioned_at=at(provisioned, 9))
    keys["p2_bot"] = VirtualKeyFactory(
        team=five, owner=people["p2"], kind=KeyKind.SERVICE, provisioned_at=at(provisioned, 9)
    )

    def on(name, day, tool="claude-code", hour=12, minute=0):
        return spend(keys[name], at(day, hour, minute), tool=tool)

    rows = [on("p6_old", D(2026, 9, 2), tool="other")]
    rows += [on(name, D(2026, 10, 21)) for name in ("p1", "p2", "p3", "p4", "p5")]  # W43: all five
    rows += [
        on("p2", D(2026, 10, 26)),
        on("p3", D(2026, 10, 26), tool="kimi"),
        on("p1", D(2026, 11, 1), hour=23, minute=30),  # Sunday, W44
        on("p1", D(2026, 11, 2), hour=0, minute=5),  # Monday, W45
        on("p4", D(2026, 11, 3), tool="codex"),
        on("p5_four", D(2026, 11, 3)),  # p5 in the other team
        on("q1", D(2026, 11, 3)),
    ]
    rows += [on("p1", D(2026, 11, day)) for day in (10, 11, 12)]  # W46
    rows += [
        on("p2", D(2026, 11, 10)),
        on("p4", D(2026, 11, 11), tool="openai-sdk"),
        on("p5", D(2026, 11, 12), tool="other"),
    ]
    rows += [on("p1", D(2026, 11, 16)), on("p1", D(2026, 11, 17), tool="codex"), on("p2", D(2026, 11, 18))]  # W47
    rows += [on("p4", D(2026, 11, day), tool="codex") for day in (18, 19, 20)]
    rows += [on("p5", D(2026, 11, 22), tool="other")]  # Sunday, W47
    # A service key's requests are not a person's adoption: many days, never counted.
    rows += [spend(keys["p2_bot"], at(D(2026, 11, day)), tool="other") for day in range(2, 23)]
    book(rows)

    people["p3"].is_active = False
    people["p3"].deactivated_at = datetime(2026, 11, 4, 15, tzinfo=UTC)
    people["p3"].save(update_fields=["is_active", "deactivated_at"])
    keys["p3"].status = keys["p3"].Status.REVOKED
    keys["p3"].revoked_at = datetime(2026, 11, 4, 15, tzinfo=UTC)
    keys["p3"].save(update_fields=["status", "revoked_at"])
    return AdoptionWorld(five=five, four=four, people=people, keys=keys)


# --- cost dashboards ----------------------------------------------------------------------------------


@dataclass
class CostWorld:
    world: object
    start: date
    end: date
    keys: dict

    @property
    def query(self) -> str:
        return f"period=custom&start={self.start}&end={self.end}"


def cost_rows(keys: dict, day: date, *, scale: int = 1) -> list[dict]:
    """A day of mixed traffic: priced from tokens, priced by the gateway, flat-rate, unpriced, refused, tagged."""
    rows = []
    for n in range(scale):
        rows += [
            spend(keys["a"], at(day, 9, n % 60), tags=["project:atlas", "workflow:review"], latency_ms=650),
            spend(keys["a"], at(day, 10, n % 60), tags=["project:atlas"], latency_ms=2400),
            spend(keys["a"], at(day, 11, n % 60), model="gpt-4o-mini", tool="codex", latency_ms=300),
            spend(keys["a"], at(day, 12, n % 60), model="acme-internal-llm", tags=["project:atlas"]),
            spend(keys["a"], at(day, 13, n % 60), model="kimi-k2.5", tool="kimi"),
            spend(keys["a"], at(day, 14, n % 60), error="rate_limit"),
            spend(keys["a"], at(day, 14, n % 60), error="rate_limit"),
            spend(keys["a"], at(day, 15, n % 60), error="budget"),
            spend(keys["b"], at(day, 9, n % 60), model="claude-sonnet-4-5", gateway_spend=0.5, tags=["project:zephyr"]),
            spend(keys["b"], at(day, 16, n % 60), model="claude-sonnet-4-5", error="provider"),
            spend(keys["c"], at(day, 9, n % 60), model="gpt-4o-mini", tags=["project:atlas", "ticket-42"]),
            spend(keys["c"], at(day, 10, n % 60), model="acme-internal-llm"),
            spend(None, at(day, 11, n % 60), model="gpt-4o", tags=["project:atlas"]),
        ]
    return rows


@pytest.fixture
def flat_rate_kimi(db):
    return ModelPolicy.objects.create(
        name="kimi-k2.5", provider="moonshot", flat_rate=True, max_classification=classification("internal")
    )


@pytest.fixture
def cost_world(world, flat_rate_kimi) -> CostWorld:
    """Team A: member_a's key (every kind of row) and approver_a's; team B: member_b's; plus an unmanaged
    key. Three days inside the period, one day before it and one after it."""
    today = timezone.now().date()
    keys = {
        "a": VirtualKeyFactory(team=world.team_a, owner=world.users[MEMBER_A], provisioned_at=PROVISIONED),
        "b": VirtualKeyFactory(team=world.team_a, owner=world.users[APPROVER_A], provisioned_at=PROVISIONED),
        "c": VirtualKeyFactory(team=world.team_b, owner=world.users[MEMBER_B], provisioned_at=PROVISIONED),
    }
    start, end = today - timedelta(days=20), today - timedelta(days=10)
    rows = []
    for day in (start, start + timedelta(days=3), end, start - timedelta(days=1), end + timedelta(days=1)):
        rows += cost_rows(keys, day)
    book(rows)
    return CostWorld(world=world, start=start, end=end, keys=keys)
