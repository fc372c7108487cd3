"""The push path end to end: a real LiteLLM proxy (mock_response models, no database) runs govsite's
callback, which posts each request's logging payload to /api/ingest/spend on a live govsite."""

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from budgets import services
from budgets.models import SpendRecord
from budgets.pull import spend_pull_run
from tests.budgets.conftest import spend_row
from tests.gateway_fixtures import free_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
CALLBACK_DIR = Path(__file__).resolve().parents[2] / "govsite" / "gateway"
MASTER = "sk-proxy-test-master-key"


@pytest.fixture
def litellm_proxy(tmp_path, live_server, admin_user):
    executable = shutil.which("litellm", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("litellm[proxy] is not installed (the dev extra)")
    _token, secret = services.ingest_token_create(actor=admin_user, name="proxy under test")
    # The callback is imported by the proxy as govsite_callback, as docker-compose mounts it.
    (tmp_path / "govsite_callback.py").write_text((CALLBACK_DIR / "callback.py").read_text())
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o\n"
        "    litellm_params: {model: openai/gpt-4o, api_key: sk-fake, mock_response: 'hello from the proxy'}\n"
        "  - model_name: claude-sonnet-4-5\n"
        "    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: sk-fake, mock_response: 'streamed hello'}\n"
        f"general_settings: {{master_key: {MASTER}}}\n"
        "litellm_settings: {callbacks: ['govsite_callback.proxy_handler_instance']}\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "GOVSITE_INGEST_URL": f"{live_server.url}/api/ingest/spend",
        "GOVSITE_INGEST_TOKEN": secret,
    }
    env.pop("DATABASE_URL", None)  # the proxy runs without a database
    log = open(tmp_path / "proxy.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [executable, "--config", str(config), "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"

    def alive():
        if proc.poll() is not None:
            raise AssertionError("the proxy exited: " + (tmp_path / "proxy.log").read_text()[-2000:])
        try:
            return httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(alive, timeout=120, what="the LiteLLM proxy to start", process=proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


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
