"""The ledger: what a request costs, who it is booked to, and rollups that always match it."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db.models import Sum

from budgets import selectors
from budgets.ingest import ingest_spend_rows
from budgets.models import ClientTool, CostDisagreement, CostSource, DailyRollup, ErrorType, SpendRecord
from budgets.pull import spend_pull_run
from keys.models import ModelPolicy
from tests.budgets.conftest import sample, spend_row
from tests.factories import VirtualKeyFactory, classification

pytestmark = pytest.mark.django_db


def litellm_price(model: str, prompt: int, completion: int, cached: int = 0) -> Decimal:
    """What litellm's bundled price map says, asked directly."""
    import litellm

    prompt_usd, completion_usd = litellm.cost_per_token(
        model=model, prompt_tokens=prompt, completion_tokens=completion, cache_read_input_tokens=cached
    )
    return Decimal(repr(prompt_usd + completion_usd)).quantize(Decimal("0.000000001"), rounding=ROUND_HALF_UP)


def pull_now():
    result = spend_pull_run()
    assert not result.error, result.error
    return result


def assert_rollups_match_ledger():
    """Every rollup counter equals the same sum over the ledger rows."""
    ledger = SpendRecord.objects.aggregate(
        prompt=Sum("prompt_tokens"),
        completion=Sum("completion_tokens"),
        cached=Sum("cached_tokens"),
        cost=Sum("cost"),
        gateway=Sum("gateway_spend"),
    )
    rollup = DailyRollup.objects.aggregate(
        requests=Sum("requests"),
        prompt=Sum("prompt_tokens"),
        completion=Sum("completion_tokens"),
        cached=Sum("cached_tokens"),
        cost=Sum("cost"),
        gateway=Sum("gateway_spend"),
    )
    assert rollup["requests"] == SpendRecord.objects.count()
    for name in ("prompt", "completion", "cached", "gateway"):
        assert rollup[name] == ledger[name], name
    assert rollup["cost"] == (ledger["cost"] or 0)


def test_streamed_and_plain_calls_are_booked_at_the_gateways_price_once_their_batch_is_written(
    ledger_gateway, team_a, member_a_user
):
    """LiteLLM prices a streamed call like a plain one; its rows reach /spend/logs/v2 with a later batch."""
    key = VirtualKeyFactory(team=team_a, owner=member_a_user, gateway=ledger_gateway)
    ledger_gateway.gateway_settings(spend_log_batch_seconds=30)  # no batch goes out until flushed below
    streamed = ledger_gateway.chat(key.secret, "claude-sonnet-4-5", stream=True)
    plain = ledger_gateway.chat(key.secret, "gpt-4o")
    assert streamed.status_code == plain.status_code == 200

    pull_now()
    assert not SpendRecord.objects.filter(key=key).exists(), "the batch writer has not written them yet"
    assert ledger_gateway.flush_spend_logs() >= 2
    pull_now()

    rows = {row.model_group: row for row in SpendRecord.objects.filter(key=key)}
    assert set(rows) == {"claude-sonnet-4-5", "gpt-4o"}
    for model_group, model in (("claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"), ("gpt-4o", "openai/gpt-4o")):
        row = rows[model_group]
        assert row.cost_source == CostSource.GATEWAY
        assert row.cost == row.gateway_spend == litellm_price(model, row.prompt_tokens, row.completion_tokens) > 0
    for row in rows.values():
        assert (row.key_id, row.user_id, row.team_id) == (key.pk, member_a_user.pk, team_a.pk)
        assert row.client_tool == ClientTool.CLAUDE_CODE
        assert row.time.tzinfo is not None
    assert_rollups_match_ledger()


def test_a_flat_rate_model_costs_nothing_and_keeps_its_tokens(ledger_gateway, team_a, member_a_user):
    ModelPolicy.objects.create(
        name="claude-haiku-4-5",
        provider="anthropic",
        flat_rate=True,
        max_classification=classification("restricted"),  # re-seeded: a transactional test flushes it
    )
    key = VirtualKeyFactory(team=team_a, owner=member_a_user, gateway=ledger_gateway)
    assert ledger_gateway.chat(key.secret, "claude-haiku-4-5").status_code == 200

    ledger_gateway.flush_spend_logs()
    pull_now()

    row = SpendRecord.objects.get(key=key)
    assert row.cost_source == CostSource.FLAT_RATE
    assert row.cost == 0
    assert row.gateway_spend > 0
    assert row.prompt_tokens > 0 and row.completion_tokens > 0
    rollup = DailyRollup.objects.get(key=key)
    assert (rollup.flat_rate_count, rollup.cost, rollup.completion_tokens) == (1, 0, row.completion_tokens)


def test_a_model_missing_from_the_price_map_is_unpriced_never_zero(ledger_gateway, team_a, member_a_user):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user, gateway=ledger_gateway)
    assert ledger_gateway.chat(key.secret, "acme-internal-llm").status_code == 200

    ledger_gateway.flush_spend_logs()
    pull_now()

    row = SpendRecord.objects.get(key=key)
    assert row.cost_source == CostSource.UNPRICED
    assert row.cost is None
    assert row.completion_tokens > 0
    rollup = DailyRollup.objects.get(key=key)
    assert rollup.unpriced_count == 1 and rollup.cost == 0


def test_rate_limit_and_budget_refusals_are_counted_per_key(ledger_gateway, team_a, member_a_user, approver_a_user):
    throttled = VirtualKeyFactory(team=team_a, owner=member_a_user, gateway=ledger_gateway, gateway__rpm_limit=1)
    capped = VirtualKeyFactory(
        team=team_a, owner=approver_a_user, gateway=ledger_gateway, gateway__max_budget=0.0000001
    )
    assert ledger_gateway.chat(throttled.secret).status_code == 200
    assert ledger_gateway.chat(throttled.secret).status_code == 429
    assert ledger_gateway.chat(capped.secret).status_code == 200
    refused = ledger_gateway.chat(capped.secret)
    assert refused.status_code in (400, 422) and refused.json()["error"]["type"] == "budget_exceeded"

    ledger_gateway.flush_spend_logs()
    pull_now()

    assert SpendRecord.objects.get(key=throttled, status="failure").error_type == ErrorType.RATE_LIMIT
    assert SpendRecord.objects.get(key=capped, status="failure").error_type == ErrorType.BUDGET_EXCEEDED
    today = datetime.now(UTC).date()
    by_key = {row["key_id"]: row for row in selectors.refusals(start=today, end=today, by="key")}
    assert (by_key[throttled.pk]["rate_limit"], by_key[throttled.pk]["budget"]) == (1, 0)
    assert (by_key[capped.pk]["rate_limit"], by_key[capped.pk]["budget"]) == (0, 1)
    by_team = {row["team_id"]: row for row in selectors.refusals(start=today, end=today, by="team")}
    assert (by_team[team_a.pk]["rate_limit"], by_team[team_a.pk]["budget"]) == (1, 1)
    assert DailyRollup.objects.filter(key=throttled).aggregate(e=Sum("errors"))["e"] == 1


def test_rows_of_keys_govsite_does_not_know_are_kept_as_unmanaged(db):
    result = ingest_spend_rows([sample("spend-log-row.plain-gpt-4o")], "pull")
    assert result.inserted == 1
    row = SpendRecord.objects.get()
    assert (row.key, row.user, row.team) == (None, None, None)
    assert row.token_hash == "litellm_proxy_master_key"
    assert row.is_unmanaged


def test_the_same_rows_twice_are_booked_and_rolled_up_once(team_a, member_a_user):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    rows = [spend_row(api_key=key.token_hash, spend=0.001, prompt_tokens=100, completion_tokens=10) for _ in range(5)]
    first = ingest_spend_rows(rows, "pull")
    second = ingest_spend_rows(rows + [rows[0]], "push")
    assert (first.inserted, first.duplicates) == (5, 0)
    assert (second.inserted, second.duplicates) == (0, 5)
    rollup = DailyRollup.objects.get(key=key)
    assert rollup.requests == 5
    assert rollup.prompt_tokens == 500
    assert_rollups_match_ledger()


def test_a_gateway_figure_that_disagrees_with_the_tokens_is_kept_and_the_disagreement_counted(db):
    honest = spend_row(model_group="gpt-4o", prompt_tokens=1000, completion_tokens=100, spend=0.0035)
    different = spend_row(model_group="gpt-4o", prompt_tokens=1000, completion_tokens=100, spend=0.05)
    ingest_spend_rows([honest, different], "pull")
    ingest_spend_rows([different], "pull")  # read again: still one disagreement
    expected = litellm_price("openai/gpt-4o", 1000, 100)
    assert expected == Decimal("0.0035")
    assert SpendRecord.objects.get(request_id=honest["request_id"]).cost_source == CostSource.GATEWAY
    kept = SpendRecord.objects.get(request_id=different["request_id"])
    assert (kept.cost_source, kept.cost, kept.gateway_spend) == (CostSource.GATEWAY, Decimal("0.05"), Decimal("0.05"))
    disagreement = CostDisagreement.objects.get()
    assert (disagreement.request_id, disagreement.computed_cost, disagreement.reason) == (
        different["request_id"],
        expected,
        CostDisagreement.Reason.UNEXPLAINED,
    )


def test_cached_tokens_are_priced_at_the_cache_rate(db):
    row = spend_row(model_group="claude-sonnet-4-5", prompt_tokens=10_000, completion_tokens=500, cached_tokens=8_000)
    ingest_spend_rows([row], "pull")
    booked = SpendRecord.objects.get()
    assert booked.cached_tokens == 8_000
    assert booked.cost == litellm_price("anthropic/claude-sonnet-4-5", 10_000, 500, cached=8_000)
    assert booked.cost < litellm_price("anthropic/claude-sonnet-4-5", 10_000, 500)


def test_rows_are_rolled_up_on_their_own_utc_day(team_a, member_a_user):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    late = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    rows = [
        spend_row(api_key=key.token_hash, start_time=late, spend=0.0035, prompt_tokens=1000, completion_tokens=100),
        spend_row(
            api_key=key.token_hash,
            start_time=late + timedelta(seconds=2),
            spend=0.0035,
            prompt_tokens=1000,
            completion_tokens=100,
        ),
    ]
    ingest_spend_rows(rows, "pull")
    assert sorted(DailyRollup.objects.filter(key=key).values_list("day", "requests")) == [
        (late.date(), 1),
        (late.date() + timedelta(days=1), 1),
    ]
