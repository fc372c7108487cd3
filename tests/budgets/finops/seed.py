"""A seeded month of ledger rows with every cost source (gateway, computed, cache hit, flat rate, unpriced), two
teams with cost centres, an unmanaged key and request tags, booked through the real ingest."""

from __future__ import annotations

from datetime import UTC, date, datetime

from budgets.ingest import ingest_spend_rows
from keys.models import ModelPolicy
from tests.budgets.conftest import spend_row
from tests.factories import TeamFactory, VirtualKeyFactory, classification, make_user

MONTH = date(2026, 2, 1)


def at(day: int, hour: int = 12, month: date = MONTH) -> datetime:
    return datetime(month.year, month.month, day, hour, tzinfo=UTC)


def seed_keys():
    ModelPolicy.objects.get_or_create(
        name="kimi-k2.5",
        defaults={"provider": "moonshot", "flat_rate": True, "max_classification": classification("internal")},
    )
    platform = TeamFactory(name="Platform", slug="platform", cost_centre="CC-100")
    research = TeamFactory(name="Research", slug="research", cost_centre="CC-200")
    ana = make_user(email="ana@example.com", full_name="Ana")
    ben = make_user(email="ben@example.com", full_name="Ben")
    return VirtualKeyFactory(team=platform, owner=ana), VirtualKeyFactory(team=research, owner=ben)


def month_rows(platform_key, research_key, *, month: date = MONTH) -> list[dict]:
    def on(day, hour=12):
        return at(day, hour, month)

    return [
        # priced by the gateway (two tags, LiteLLM's User-Agent tags too)
        spend_row(api_key=platform_key.token_hash, spend=0.0125, start_time=on(2), tags=["project:apollo"]),
        spend_row(api_key=platform_key.token_hash, spend=0.0075, start_time=on(2, 15), tags=["project:apollo"]),
        spend_row(api_key=platform_key.token_hash, spend=0.002, start_time=on(2, 16)),
        # the gateway logged $0 for tokens: computed with litellm's functions
        spend_row(api_key=platform_key.token_hash, spend=0.0, start_time=on(3), prompt_tokens=1200),
        # a LiteLLM cache hit
        {**spend_row(api_key=research_key.token_hash, spend=0.003, start_time=on(4)), "cache_hit": "True"},
        # a flat-rate model
        spend_row(api_key=research_key.token_hash, model_group="kimi-k2.5", spend=0.01, start_time=on(5)),
        # unpriced: the underlying model is not in the price map
        spend_row(api_key=research_key.token_hash, model="openai/acme-private", spend=0.0, start_time=on(6)),
        spend_row(api_key=research_key.token_hash, model="openai/acme-private", spend=0.0, start_time=on(6, 13)),
        # an Anthropic model, another day, on the last day of the month
        spend_row(api_key=research_key.token_hash, model_group="claude-sonnet-4-5", spend=0.05, start_time=on(28, 23)),
        # a key govsite does not manage
        spend_row(api_key="f" * 64, spend=0.001, start_time=on(10)),
    ]


def seed_month(month: date = MONTH):
    platform_key, research_key = seed_keys()
    rows = month_rows(platform_key, research_key, month=month)
    assert ingest_spend_rows(rows, "pull").inserted == len(rows)
    return platform_key, research_key
