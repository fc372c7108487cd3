"""The sandbox gateway behaves like LiteLLM where govsite depends on it: refusals, cost, spend rows
written in batches, /spend/logs/v2 paging with its quirks, the admin API's surprises (an existing secret,
disabled custom keys, deletes that echo) and a proxy without a database. It runs as a real process (the
`sandbox` fixture); where LiteLLM's own code can say what the answer is, the test asks it."""

import concurrent.futures
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from govsite.devtools.sandbox import SPEND_LOG_COLUMNS
from govsite.devtools.sandbox.store import SPEND_LOG_V2_COLUMNS
from govsite.gateway.client import GatewayClient, Unavailable
from tests.devtools.sandbox_helpers import (
    SAMPLE_ROW_KEYS,
    SAMPLES,
    error_of,
    key_info,
    litellm_cost,
    new_key,
    sse_events,
    written_rows,
)
from tests.gateway_fixtures import ROOT, free_port
from tests.waiting import wait_until

# --- allowed calls and their rows -------------------------------------------------------------------


def test_a_call_is_answered_and_logged_as_a_litellm_spend_row(sandbox, litellm):
    with sandbox.client() as client:
        team = client.team_new(team_id=sandbox.unique("team"), max_budget=100.0)
    key = new_key(sandbox, user_id="govsite-user-7", team_id=team["team_id"], models=["gpt-4o"])

    response = sandbox.chat(
        key["key"],
        "gpt-4o",
        metadata={"tags": ["project:payments"], "spend_logs_metadata": {"ticket": "PAY-1"}},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"]
    [row] = written_rows(sandbox, api_key=key["token"])
    assert set(SPEND_LOG_COLUMNS) == SAMPLE_ROW_KEYS, "the table holds what LiteLLM's payload builder makes"
    assert set(row) == set(SPEND_LOG_V2_COLUMNS), "/spend/logs/v2 selects its list columns only"
    assert row["request_id"] == body["id"]
    assert row["status"] == "success"
    assert row["api_key"] == key["token"]
    assert (row["user"], row["team_id"]) == ("govsite-user-7", team["team_id"])
    assert (row["model"], row["model_group"], row["custom_llm_provider"]) == ("openai/gpt-4o", "gpt-4o", "openai")
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (10, 20, 30)
    assert row["spend"] == pytest.approx(litellm_cost(litellm, "openai/gpt-4o", 10, 20))
    assert row["startTime"].endswith("000+00:00"), "PostgreSQL timestamp(3): milliseconds"
    assert isinstance(row["metadata"], dict), "/spend/logs/v2 re-hydrates metadata into an object"
    assert isinstance(row["request_tags"], str), "request_tags stays JSON text"
    metadata = row["metadata"]
    assert metadata["user_api_key_alias"] == key["key_alias"]
    assert metadata["user_api_key_team_id"] == team["team_id"]
    assert metadata["user_api_key_user_id"] == "govsite-user-7"
    assert metadata["user_agent"] == "claude-cli/2.0.1 (external, cli)"
    assert metadata["spend_logs_metadata"] == {"ticket": "PAY-1"}
    assert metadata["usage_object"]["total_tokens"] == 30
    tags = json.loads(row["request_tags"])
    assert "project:payments" in tags
    assert "User-Agent: claude-cli" in tags
    assert "User-Agent: claude-cli/2.0.1 (external, cli)" in tags
    assert key_info(sandbox, key)["spend"] == pytest.approx(row["spend"])
    with sandbox.client() as client:
        assert client.team_info(team_id=team["team_id"])["team_info"]["spend"] == pytest.approx(row["spend"])


def test_the_v1_path_and_the_master_key_work_too(sandbox):
    response = httpx.post(
        f"{sandbox.url}/v1/chat/completions",
        json={"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {sandbox.master_key}", "User-Agent": "codex_cli_rs/0.40.0"},
        timeout=30,
    )
    assert response.status_code == 200
    [row] = written_rows(sandbox, request_id=response.json()["id"])
    assert row["api_key"] == "litellm_proxy_master_key"
    assert row["user"] == "default_user_id"


def test_cached_prompt_tokens_are_reported_and_priced(sandbox, litellm):
    key = new_key(sandbox)
    response = sandbox.chat(key["key"], "claude-sonnet-4-5", headers={"x-sandbox-cached-tokens": "800"})

    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 800
    [row] = written_rows(sandbox, api_key=key["token"])
    usage = row["metadata"]["usage_object"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 800
    expected = litellm_cost(
        litellm, "anthropic/claude-sonnet-4-5", row["prompt_tokens"], row["completion_tokens"], cached=800
    )
    assert row["spend"] == pytest.approx(expected)
    assert row["spend"] < litellm_cost(
        litellm, "anthropic/claude-sonnet-4-5", row["prompt_tokens"], row["completion_tokens"]
    )


def test_an_unpriced_model_answers_and_logs_tokens_at_zero_spend(sandbox):
    key = new_key(sandbox)
    response = sandbox.chat(key["key"], "acme-internal-llm")

    assert response.status_code == 200
    [row] = written_rows(sandbox, api_key=key["token"])
    assert (row["model"], row["model_group"]) == ("openai/acme-internal-llm", "acme-internal-llm")
    assert row["total_tokens"] == 30
    assert row["spend"] == 0.0
    assert row["metadata"]["cost_breakdown"] is None


def test_kimi_is_priced_from_litellms_map(sandbox, litellm):
    key = new_key(sandbox)
    assert sandbox.chat(key["key"], "kimi-k2.5").status_code == 200
    [row] = written_rows(sandbox, api_key=key["token"])
    assert row["custom_llm_provider"] == "moonshot"
    assert row["spend"] == pytest.approx(litellm_cost(litellm, "moonshot/kimi-k2.5", 10, 20))
    assert row["spend"] > 0


# --- streaming -------------------------------------------------------------------------------------


def test_a_stream_with_include_usage_carries_usage_and_real_cost(sandbox, litellm):
    key = new_key(sandbox)
    response = sandbox.chat(key["key"], "claude-sonnet-4-5", stream=True, include_usage=True)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = sse_events(response)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    usage = chunks[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    [row] = written_rows(sandbox, api_key=key["token"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    expected = litellm_cost(litellm, "anthropic/claude-sonnet-4-5", row["prompt_tokens"], row["completion_tokens"])
    assert row["spend"] == pytest.approx(expected) and row["spend"] > 0
    assert row["request_id"] == chunks[0]["id"]
    assert row["cache_hit"] == "False"
    assert key_info(sandbox, key)["spend"] == pytest.approx(row["spend"])


def test_a_stream_without_include_usage_is_priced_all_the_same(sandbox, litellm):
    """LiteLLM rebuilds a streamed response from its chunks and prices it (the captured streamed sample
    was logged at a cost with stream_options unset): the caller not asking for usage changes nothing."""
    key = new_key(sandbox)
    response = sandbox.chat(key["key"], "claude-sonnet-4-5", stream=True)

    assert response.status_code == 200
    chunks = sse_events(response)
    assert all("usage" not in chunk for chunk in chunks)
    [row] = written_rows(sandbox, api_key=key["token"])
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
    expected = litellm_cost(litellm, "anthropic/claude-sonnet-4-5", row["prompt_tokens"], row["completion_tokens"])
    assert row["spend"] == pytest.approx(expected) and row["spend"] > 0
    assert row["status"] == "success"
    assert key_info(sandbox, key)["spend"] == pytest.approx(row["spend"])


def test_the_real_streamed_sample_was_priced_without_include_usage():
    sample = json.loads((SAMPLES / "spend-log-row.streamed-claude-sonnet-4-5.json").read_text())
    assert json.loads(sample["metadata"])["usage_object"]["completion_tokens"] > 0
    assert sample["spend"] > 0


# --- refusals --------------------------------------------------------------------------------------


def _failure_row(sandbox, key) -> dict:
    [row] = written_rows(sandbox, api_key=key["token"], status_filter="failure")
    assert row["status"] == "failure"
    assert row["spend"] == 0.0
    return row


def test_no_key_and_an_unknown_key_are_401(sandbox):
    anonymous = httpx.post(f"{sandbox.url}/chat/completions", json={"model": "gpt-4o", "messages": []}, timeout=10)
    unknown = sandbox.chat("sk-this-key-does-not-exist-0000")

    assert anonymous.status_code == 401
    assert error_of(anonymous)["type"] == "auth_error"
    assert unknown.status_code == 401
    assert error_of(unknown) == {
        "message": error_of(unknown)["message"],
        "type": "token_not_found_in_db",
        "param": "key",
        "code": "401",
    }
    assert "Invalid proxy server token passed" in error_of(unknown)["message"]
    assert "sk-this-key-does-not-exist-0000" not in unknown.text, "the secret is never echoed whole"


def test_a_blocked_key_is_401_and_the_refusal_is_logged(sandbox):
    key = new_key(sandbox)
    with sandbox.client() as client:
        client.key_block(key=key["key"])
    response = sandbox.chat(key["key"])

    assert response.status_code == 401
    assert error_of(response)["type"] == "auth_error"
    assert "Key is blocked" in error_of(response)["message"]
    error = _failure_row(sandbox, key)["metadata"]["error_information"]
    assert error["error_code"] == "401"


def test_an_expired_key_is_401_expired_key(sandbox):
    key = new_key(sandbox, duration="0s")
    response = sandbox.chat(key["key"])

    assert response.status_code == 401
    assert error_of(response)["type"] == "expired_key"
    assert error_of(response)["param"] == key["key_name"]
    assert "Expired Key" in error_of(response)["message"]
    assert key_info(sandbox, key)["status"] == "expired"


def test_a_model_outside_the_key_is_403_key_model_access_denied(sandbox):
    key = new_key(sandbox, models=["gpt-4o-mini"])
    response = sandbox.chat(key["key"], "claude-sonnet-4-5")

    assert response.status_code == 403
    assert error_of(response)["type"] == "key_model_access_denied"
    assert error_of(response)["param"] == "model"
    assert "claude-sonnet-4-5" in error_of(response)["message"]
    row = _failure_row(sandbox, key)
    assert row["model_group"] == "claude-sonnet-4-5"
    assert sandbox.chat(key["key"], "gpt-4o-mini").status_code == 200


def test_a_model_outside_the_team_is_403_team_model_access_denied(sandbox):
    with sandbox.client() as client:
        team = client.team_new(team_id=sandbox.unique("team"), models=["gpt-4o"])
    key = new_key(sandbox, team_id=team["team_id"])
    response = sandbox.chat(key["key"], "claude-haiku-4-5")

    assert response.status_code == 403
    assert error_of(response)["type"] == "team_model_access_denied"


def test_an_unknown_model_is_400(sandbox):
    key = new_key(sandbox)
    response = sandbox.chat(key["key"], "gpt-99")
    assert response.status_code == 400
    assert "Invalid model name passed in model=gpt-99" in error_of(response)["message"]


def test_over_budget_is_refused_with_budget_exceeded_and_logged(sandbox, litellm):
    key = new_key(sandbox, max_budget=0.0001)
    assert sandbox.chat(key["key"]).status_code == 200, "spend is checked before the call, like LiteLLM"
    spend = key_info(sandbox, key)["spend"]
    response = sandbox.chat(key["key"])

    assert response.status_code == litellm.budget_exceeded_status_code == 422
    error = error_of(response)
    assert (error["type"], error["param"], error["code"]) == ("budget_exceeded", None, "422")
    assert error["message"].startswith("Budget has been exceeded!")
    information = _failure_row(sandbox, key)["metadata"]["error_information"]
    assert information["error_class"] == "BudgetExceededError"
    assert information["error_code"] == "422"
    assert information["error_budget_entity_type"] == "key"
    assert key_info(sandbox, key)["spend"] == spend, "a refusal costs nothing"


def test_a_team_over_budget_refuses_its_keys(sandbox):
    with sandbox.client() as client:
        team = client.team_new(team_id=sandbox.unique("team"), max_budget=0.0001)
    key = new_key(sandbox, team_id=team["team_id"])
    assert sandbox.chat(key["key"]).status_code == 200
    response = sandbox.chat(key["key"])
    assert error_of(response)["type"] == "budget_exceeded"
    assert "Team=" in error_of(response)["message"]


def _end_budget_period(sandbox, key: dict) -> None:
    """Move the key's reset time into the past, as the clock reaching it would (no waiting)."""
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="microseconds")
    with sqlite3.connect(sandbox.db_path) as conn:
        updated = conn.execute(
            "UPDATE keys SET record = json_set(record, '$.budget_reset_at', ?) WHERE token = ?", (past, key["token"])
        ).rowcount
    assert updated == 1


def test_spend_resets_when_the_budget_period_ends(sandbox):
    key = new_key(sandbox, max_budget=0.0001, budget_duration="30d")
    assert sandbox.chat(key["key"]).status_code == 200
    assert sandbox.chat(key["key"]).status_code == 422
    reset_at = datetime.fromisoformat(key_info(sandbox, key)["budget_reset_at"])
    assert reset_at > datetime.now(UTC) + timedelta(days=1), "a 30-day period ends in the future"
    assert key_info(sandbox, key)["spend"] > 0.0, "the period has not ended yet"

    _end_budget_period(sandbox, key)

    assert key_info(sandbox, key)["spend"] == 0.0
    assert datetime.fromisoformat(key_info(sandbox, key)["budget_reset_at"]) > datetime.now(UTC), (
        "the next period began"
    )
    assert sandbox.chat(key["key"]).status_code == 200


def _three_calls_in_one_minute(sandbox) -> tuple[dict, list[httpx.Response]]:
    """Three calls of a new key limited to 2 a minute, all inside one rate-limit minute: if the minute
    turned while they ran, again with a new key (three quick calls cannot straddle two turns)."""
    for _ in range(2):
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        key = new_key(sandbox, rpm_limit=2)
        responses = [sandbox.chat(key["key"]) for _ in range(3)]
        if datetime.now(UTC).replace(second=0, microsecond=0) == minute:
            return key, responses
    raise AssertionError("the minute turned during both tries")


def test_rpm_limit_is_429_within_the_minute(sandbox):
    key, (*first_two, response) = _three_calls_in_one_minute(sandbox)
    assert [r.status_code for r in first_two] == [200, 200]

    assert response.status_code == 429
    assert error_of(response)["type"] == "throttling_error"
    assert response.headers["retry-after"] == "60"
    information = _failure_row(sandbox, key)["metadata"]["error_information"]
    assert information["error_code"] == "429"
    assert information["error_rate_limit_type"] == "requests"


def test_a_deleted_key_is_unknown_and_reads_as_deleted(sandbox):
    key = new_key(sandbox)
    with sandbox.client() as client:
        client.key_delete(keys=[key["token"]])
    assert sandbox.chat(key["key"]).status_code == 401
    assert key_info(sandbox, key)["status"] == "deleted"


def test_concurrent_calls_each_write_one_row_and_add_up(sandbox):
    key = new_key(sandbox)
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: sandbox.chat(key["key"]).status_code, range(24)))

    assert statuses == [200] * 24
    rows = written_rows(sandbox, expect=24, api_key=key["token"])
    assert len(rows) == 24
    assert key_info(sandbox, key)["spend"] == pytest.approx(sum(r["spend"] for r in rows))


# --- starting it -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_manage_py_sandbox_gateway_serves(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox_gateway", "--port", str(port), "--db", str(tmp_path / "s.sqlite3"),
         "--master-key", "sk-manage-py-master-key"],
        cwd=ROOT,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        with GatewayClient(f"http://127.0.0.1:{port}", "sk-manage-py-master-key", 2) as client:

            def alive() -> bool:
                try:
                    return client.liveliness() == "I'm alive!"
                except Unavailable:  # not listening yet
                    return False

            try:
                wait_until(alive, timeout=60, what="manage.py sandbox_gateway to come up", process=process)
            except AssertionError as exc:
                pytest.fail(f"{exc}: {process.stderr.read1().decode()}")
            assert client.key_list()["total_count"] == 0
    finally:
        process.terminate()
        process.wait(10)
