"""The push path end to end: a real LiteLLM proxy (mock_response models, no database) runs govsite's
callback, which posts each request's logging payload to /api/ingest/spend on a live govsite."""

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from budgets import services
from budgets.models import SpendRecord
from budgets.pull import spend_pull_run
from tests.budgets.conftest import spend_row
from tests.litellm_proxy import callback_env, start_real_proxy
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
MASTER = "sk-proxy-test-master-key"


@pytest.fixture
def litellm_proxy(tmp_path, live_server, admin_user):
    _token, secret = services.ingest_token_create(actor=admin_user, name="proxy under test")
    env = callback_env(tmp_path, ingest_url=f"{live_server.url}/api/ingest/spend", ingest_token=secret)
    proxy = start_real_proxy(
        tmp_path,
        "model_list:\n"
        "  - model_name: gpt-4o\n"
        "    litellm_params: {model: openai/gpt-4o, api_key: sk-fake, mock_response: 'hello from the proxy'}\n"
        "  - model_name: claude-sonnet-4-5\n"
        "    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: sk-fake, mock_response: 'streamed hello'}\n"
        f"general_settings: {{master_key: {MASTER}}}\n"
        "litellm_settings: {callbacks: ['govsite_callback.proxy_handler_instance']}\n",
        env=env,
    )
    try:
        yield proxy.url
    finally:
        proxy.stop()


def _call(url, model, **extra):
    response = httpx.post(
        f"{url}/chat/completions",
        headers={"Authorization": f"Bearer {MASTER}", "User-Agent": "claude-cli/2.0.1"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response


def test_a_streamed_and_a_plain_call_arrive_with_tokens_and_cost_and_a_pull_adds_no_second_row(
    litellm_proxy, sandbox, settings
):
    _call(litellm_proxy, "gpt-4o")
    _call(litellm_proxy, "claude-sonnet-4-5", stream=True)
    rows = wait_until(
        lambda: list(SpendRecord.objects.order_by("time")) if SpendRecord.objects.count() >= 2 else [],
        timeout=60,
        what="both calls in the ledger",
    )
    assert {row.model_group for row in rows} == {"gpt-4o", "claude-sonnet-4-5"}
    for row in rows:
        assert row.source == "push"
        assert row.prompt_tokens > 0 and row.completion_tokens > 0
        assert row.cost is not None and row.cost > 0
    assert any(row.client_tool == "claude-code" for row in rows)
    import litellm

    for row in rows:
        prompt_usd, completion_usd = litellm.cost_per_token(
            model=row.model, prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens
        )
        assert row.cost == Decimal(repr(round(prompt_usd + completion_usd, 15))).quantize(Decimal("0.000000001"))

    # The same request also read by the pull (the gateway's spend log) is still one row.
    settings.LITELLM_URL, settings.LITELLM_MASTER_KEY, settings.REDIS_URL = sandbox.url, sandbox.master_key, ""
    pushed = rows[0]
    sandbox.insert_spend_rows(
        [
            spend_row(
                request_id=pushed.request_id,
                api_key="litellm_proxy_master_key",
                start_time=datetime.now(UTC),
                model_group=pushed.model_group,
            )
        ]
    )
    assert not spend_pull_run().error
    assert SpendRecord.objects.filter(request_id=pushed.request_id).count() == 1
