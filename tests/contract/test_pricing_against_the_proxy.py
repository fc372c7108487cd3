"""Contract: the ledger's cost of a request equals what the real LiteLLM proxy computed for it.

One `litellm` proxy for the module (mock_response deployments, govsite's callback pushing to a live
govsite), started once to keep CI time down. For each pricing case the proxy's own figure — the
`x-litellm-response-cost` it answers with, the `response_cost` it logs — is compared with the one
ledger row the push booked. The proxy runs without a database, so these rows arrive by push only.
"""

import json
from decimal import Decimal

import httpx
import pytest

from budgets.models import CostSource, IngestToken, SpendRecord
from budgets.services import hash_ingest_token
from tests.litellm_proxy import callback_env, start_real_proxy
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
MASTER = "sk-contract-master-key"
INGEST_SECRET = "gsi_contract-tests-ingest-token-0123456789"
NANO = Decimal("0.000000001")


def _mock(usage: dict, content: str = "mocked") -> dict:
    return {
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": usage,
    }


CONFIG = {
    "model_list": [
        {
            "model_name": "claude-cache-1h",
            "litellm_params": {
                "model": "anthropic/claude-sonnet-4-5",
                "api_key": "sk-fake",
                "mock_response": _mock(
                    {
                        "prompt_tokens": 1200,
                        "completion_tokens": 80,
                        "total_tokens": 1280,
                        "cache_creation_input_tokens": 4000,
                        "cache_creation_token_details": {
                            "ephemeral_1h_input_tokens": 4000,
                            "ephemeral_5m_input_tokens": 0,
                        },
                        "cache_read_input_tokens": 0,
                    }
                ),
            },
        },
        {
            "model_name": "qwen-reasoning",
            "litellm_params": {
                "model": "dashscope/qwen-turbo",
                "api_key": "sk-fake",
                "mock_response": _mock(
                    {
                        "prompt_tokens": 500,
                        "completion_tokens": 900,
                        "total_tokens": 1400,
                        "completion_tokens_details": {"reasoning_tokens": 700},
                    }
                ),
            },
        },
        {
            "model_name": "gpt-4o-negotiated",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_key": "sk-fake",
                "input_cost_per_token": 0.000001,
                "output_cost_per_token": 0.000003,
                "mock_response": "a negotiated rate",
            },
        },
        {
            "model_name": "gpt-4o",
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-fake", "mock_response": "standard"},
        },
        {
            "model_name": "gpt-4o-cached",
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-fake", "mock_response": "cache me"},
        },
        {
            "model_name": "gpt-4o-mini",
            "litellm_params": {
                "model": "openai/our-private-finetune",
                "api_key": "sk-fake",
                "mock_response": "private",
            },
        },
        {
            "model_name": "text-embedding-3-small",
            "litellm_params": {"model": "openai/text-embedding-3-small", "api_key": "sk-fake", "mock_response": [0.1]},
        },
        {
            "model_name": "gemini-long",
            "litellm_params": {
                "model": "gemini/gemini-2.5-pro",
                "api_key": "fake",
                "mock_response": _mock({"prompt_tokens": 250_000, "completion_tokens": 1000, "total_tokens": 251_000}),
            },
        },
        {
            "model_name": "gpt-4o-failing",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_key": "sk-fake",
                "mock_response": "litellm.RateLimitError",
            },
        },
    ],
    "general_settings": {"master_key": MASTER},
    "litellm_settings": {
        "callbacks": ["govsite_callback.proxy_handler_instance"],
        "cache": True,
        "cache_params": {"type": "local", "supported_call_types": ["acompletion"]},
        "num_retries": 0,
    },
    "router_settings": {"num_retries": 0},
}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, live_server):
    directory = tmp_path_factory.mktemp("contract-proxy")
    env = callback_env(
        directory,
        ingest_url=f"{live_server.url}/api/ingest/spend",
        ingest_token=INGEST_SECRET,
        GOVSITE_SPOOL_DIR=str(directory / "spool"),
        GOVSITE_SPOOL_MAX_DELAY="1",
    )
    proxy = start_real_proxy(directory, json.dumps(CONFIG), env=env)  # JSON is YAML
    try:
        yield proxy.url
    finally:
        proxy.stop()


@pytest.fixture(autouse=True)
def ingest_token(db):
    """The proxy's token, made again for each test (the database is emptied between them)."""
    IngestToken.objects.create(name="contract proxy", token_hash=hash_ingest_token(INGEST_SECRET), prefix="gsi_contr")


def _post(proxy, path: str, body: dict, status: int = 200) -> httpx.Response:
    response = httpx.post(f"{proxy}{path}", headers={"Authorization": f"Bearer {MASTER}"}, json=body, timeout=60)
    assert response.status_code == status, response.text[:500]
    return response


def _chat(proxy, model: str, content: str = "hi", **extra) -> httpx.Response:
    return _post(
        proxy, "/chat/completions", {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    )


def _litellms_cost(response: httpx.Response) -> Decimal:
    # The proxy leaves the header out when it could not price the request.
    return Decimal(response.headers.get("x-litellm-response-cost", "0")).quantize(NANO)


def _row(**lookup) -> SpendRecord:
    wait_until(lambda: SpendRecord.objects.filter(**lookup).exists(), timeout=30, what="the pushed row")
    assert SpendRecord.objects.filter(**lookup).count() == 1
    return SpendRecord.objects.get(**lookup)


def _assert_same_cost(response: httpx.Response) -> SpendRecord:
    row = _row(request_id=response.json()["id"])
    expected = _litellms_cost(response)
    assert expected > 0, "LiteLLM priced this request"
    assert (row.cost, row.source) == (expected, "push")
    return row


def test_one_hour_cache_writes(proxy):
    row = _assert_same_cost(_chat(proxy, "claude-cache-1h"))
    assert row.cache_creation_tokens == 4000


def test_reasoning_tokens_priced_apart_from_output(proxy):
    _assert_same_cost(_chat(proxy, "qwen-reasoning"))


def test_prices_set_on_the_deployment(proxy):
    response = _chat(proxy, "gpt-4o-negotiated")
    row = _assert_same_cost(response)
    usage = response.json()["usage"]
    assert row.cost == (Decimal("0.000001") * usage["prompt_tokens"] + Decimal("0.000003") * usage["completion_tokens"])


def test_the_priority_service_tier(proxy):
    standard = _assert_same_cost(_chat(proxy, "gpt-4o", "standard please"))
    priority = _assert_same_cost(_chat(proxy, "gpt-4o", "standard please", service_tier="priority"))
    assert priority.cost > standard.cost


def test_a_litellm_cache_hit_costs_nothing(proxy):
    first = _chat(proxy, "gpt-4o-cached", "the same question")
    _assert_same_cost(first)
    _chat(proxy, "gpt-4o-cached", "the same question")
    # What LiteLLM logged for the hit (its response_cost, kept as gateway_spend) and the ledger: both $0.
    row = _row(request_id__contains="_cache_hit")
    assert (row.gateway_spend, row.cost, row.cost_source) == (Decimal(0), Decimal(0), CostSource.CACHE_HIT)


def test_an_unpriced_model_served_under_a_public_name(proxy):
    response = _chat(proxy, "gpt-4o-mini")
    assert _litellms_cost(response) == 0
    row = _row(request_id=response.json()["id"])
    assert (row.cost, row.cost_source, row.model_group) == (None, CostSource.UNPRICED, "gpt-4o-mini"), (
        row.cost_source,
        row.model,
        row.prompt_tokens,
    )


def test_an_embedding_call_keeps_its_nano_dollars(proxy):
    response = _post(proxy, "/embeddings", {"model": "text-embedding-3-small", "input": "a short text"})
    expected = _litellms_cost(response)
    assert 0 < expected < Decimal("0.000001")
    row = _row(model_group="text-embedding-3-small")
    assert row.cost == expected


def test_a_long_context_price_tier(proxy):
    row = _assert_same_cost(_chat(proxy, "gemini-long"))
    assert row.prompt_tokens == 250_000


def test_a_failed_call_is_booked_once_at_litellms_cost(proxy):
    _post(proxy, "/chat/completions", {"model": "gpt-4o-failing", "messages": [{"role": "user", "content": "hi"}]}, 429)
    row = _row(model_group="gpt-4o-failing")
    assert (row.status, row.error_type, row.cost) == ("failure", "rate_limit", Decimal(0))
