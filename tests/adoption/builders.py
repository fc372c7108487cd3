"""Build ledger data for the dashboard and adoption tests: keys, LiteLLM-shaped spend rows booked through
the real ingest service, then the adoption rollups rebuilt from the ledger."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

from adoption import rollups
from budgets.ingest import ingest_spend_rows
from govsite.devtools.demo_traffic import ERRORS, USER_AGENTS
from tests.factories import SpendLogRowFactory

_ids = itertools.count(1)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


# When the keys of the ledger tests were provisioned: before any day their spend is booked on.
PROVISIONED = at(date(2026, 1, 5), 9)


def spend(
    key,
    when: datetime,
    *,
    model: str = "gpt-4o",
    tool: str = "claude-code",
    tags=(),
    latency_ms: int = 800,
    prompt_tokens: int = 1000,
    completion_tokens: int = 200,
    gateway_spend: float = 0.0,
    error: str | None = None,
) -> dict:
    """One request in LiteLLM's spend-log shape, through `key` (None: a key govsite does not manage)."""
    failed = error is not None
    return SpendLogRowFactory(
        request_id=f"req-{next(_ids):08d}",
        start_time=when,
        end_time=when + timedelta(milliseconds=latency_ms),
        api_key=key.secret if key is not None else "sk-unmanaged-key-made-by-hand",
        model_group=model,
        spend=gateway_spend,
        prompt_tokens=0 if failed else prompt_tokens,
        completion_tokens=0 if failed else completion_tokens,
        status="failure" if failed else "success",
        user_agent=USER_AGENTS[tool],
        tags=list(tags),
        error_information=ERRORS[error] if failed else None,
    )


def book(rows: list[dict]):
    """Book rows through the ingest service, then rebuild the adoption rollups of their days from the
    ledger (correct whether or not the ingest already maintains them)."""
    result = ingest_spend_rows(rows, "push", evaluate_budgets=False)
    assert not result.rejected, result.rejected
    days = [datetime.fromisoformat(row["startTime"]).astimezone(UTC).date() for row in rows]
    if days:
        rollups.rebuild(min(days), max(days))
    return result
