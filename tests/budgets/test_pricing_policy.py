"""The pricing policy: the gateway's non-zero cost is kept; the ledger prices only what it logged at $0,
with litellm's own functions over the whole row; cache hits cost nothing; a private model is unpriced."""

import time
import uuid
from decimal import Decimal

import pytest

from budgets.ingest import ingest_spend_rows
from budgets.models import CostDisagreement, CostSource, SpendRecord
from tests.budgets.conftest import sample

pytestmark = pytest.mark.django_db
NANO = Decimal("0.000000001")


def payload(**fields) -> dict:
    """A logging payload as the callback pushes it (the captured gpt-4o one), with fields replaced."""
    row = sample("standard-logging-object.plain-gpt-4o")
    row["id"] = f"chatcmpl-{uuid.uuid4()}"
    row["startTime"] = row["endTime"] = row["completionStartTime"] = time.time()
    usage = fields.pop("usage", None)
    if usage is not None:
        row["metadata"]["usage_object"] = usage
        row["prompt_tokens"], row["completion_tokens"] = usage["prompt_tokens"], usage["completion_tokens"]
    row.update(fields)
    return row


def booked(row: dict) -> SpendRecord:
    result = ingest_spend_rows([row], "push", strict=True)
    assert result.inserted == 1
    return SpendRecord.objects.get(request_id__startswith=row["id"])


def litellm_usd(model: str, usage: dict, **extra) -> Decimal:
    import litellm

    prompt_usd, completion_usd = litellm.cost_per_token(
        model=model,
        prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"],
        usage_object=litellm.Usage(**usage),
        **extra,
    )
    return Decimal(repr(round(prompt_usd + completion_usd, 15))).quantize(NANO)


def test_a_litellm_cache_hit_costs_nothing_even_with_tokens_and_a_logged_cost(db):
    row = booked(payload(cache_hit=True, response_cost=0.0))
    assert (row.cost, row.cost_source) == (Decimal(0), CostSource.CACHE_HIT)


def test_a_private_model_served_under_a_public_name_is_unpriced_not_priced_as_the_public_one(db):
    row = booked(payload(model="openai/our-private-finetune", model_group="gpt-4o", response_cost=0.0))
    assert (row.cost, row.cost_source) == (None, CostSource.UNPRICED)


def test_a_private_model_the_gateway_priced_keeps_the_gateways_figure(db):
    row = booked(payload(model="openai/our-private-finetune", model_group="gpt-4o", response_cost=0.0123))
    assert (row.cost, row.cost_source) == (Decimal("0.0123"), CostSource.GATEWAY)


def test_a_request_logged_at_zero_is_priced_with_its_reasoning_tokens_as_litellm_prices_them(db):
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 900,
        "total_tokens": 2100,
        "completion_tokens_details": {"reasoning_tokens": 700},
        "prompt_tokens_details": {"cached_tokens": 1000},
    }
    row = booked(payload(model="openai/o3", model_group="o3", response_cost=0.0, usage=usage))
    assert row.cost_source == CostSource.COMPUTED
    assert row.cost == litellm_usd("openai/o3", usage)


def test_a_request_logged_at_zero_is_priced_with_its_deployments_own_prices(db):
    prices = {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000004, "litellm_provider": "openai"}
    row = booked(
        payload(
            response_cost=0.0,
            model_map_information={"model_map_key": "gpt-4o", "model_map_value": prices},
        )
    )
    assert row.cost_source == CostSource.COMPUTED
    assert row.cost == Decimal("0.000001") * 10 + Decimal("0.000004") * 20


def test_an_embedding_keeps_its_nine_decimal_places(db):
    usage = {"prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7}
    gateway = booked(
        payload(model="openai/text-embedding-3-small", call_type="aembedding", response_cost=1.4e-07, usage=usage)
    )
    assert (gateway.cost, gateway.cost_source) == (Decimal("0.000000140"), CostSource.GATEWAY)
    computed = booked(
        payload(model="openai/text-embedding-3-small", call_type="aembedding", response_cost=0.0, usage=usage)
    )
    assert (computed.cost, computed.cost_source) == (Decimal("0.000000140"), CostSource.COMPUTED)


def test_the_gateways_priority_tier_price_is_kept_and_the_disagreement_names_the_tier(db):
    row = payload(response_cost=0.0004)
    row["cost_breakdown"]["service_tier"] = "priority"
    kept = booked(row)
    assert (kept.cost, kept.cost_source) == (Decimal("0.0004"), CostSource.GATEWAY)
    disagreement = CostDisagreement.objects.get(request_id=row["id"])
    assert disagreement.reason == CostDisagreement.Reason.SERVICE_TIER
    assert disagreement.computed_cost == Decimal("0.000225")


def test_the_reconciliation_page_counts_disagreements_by_reason(admin_client, db):
    row = payload(response_cost=0.0004)
    row["cost_breakdown"]["service_tier"] = "priority"
    booked(row)
    page = admin_client.get("/budgets/reconciliation/")
    assert page.status_code == 200
    assert [(r["reason"], r["requests"]) for r in page.context["disagreements"]] == [("service_tier", 1)]
    assert "Service tier" in page.content.decode()
