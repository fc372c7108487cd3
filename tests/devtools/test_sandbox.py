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
from pathlib import Path

import httpx
import pytest

from govsite.devtools.sandbox import SPEND_LOG_COLUMNS, make_spend_row
from govsite.devtools.sandbox.store import SPEND_LOG_V2_COLUMNS
from govsite.gateway.client import GatewayClient, Unavailable
from tests.gateway_fixtures import ROOT, free_port
from tests.waiting import wait_until

SAMPLES = Path("/work/shared/reference/litellm-samples")
SAMPLE_ROW_KEYS = {
    "agent_id", "api_base", "api_key", "billing_agent_id", "cache_hit", "cache_key", "call_type",
    "completionStartTime", "completion_tokens", "custom_llm_provider", "endTime", "end_user", "litellm_call_id",
    "mcp_namespaced_tool_name", "messages", "metadata", "model", "model_group", "model_id", "organization_id",
    "prompt_tokens", "proxy_server_request", "request_duration_ms", "request_id", "request_tags",
    "requester_ip_address", "response", "session_id", "spend", "startTime", "status", "team_id", "total_tokens", "user",
}  # fmt: skip


@pytest.fixture(scope="module")
def litellm():
    import litellm  # slow to import; only this module's cost checks need it

    return litellm


def _cost(litellm, model: str, prompt: int, completion: int, cached: int = 0) -> float:
    prompt_cost, completion_cost = litellm.cost_per_token(
        model=model, prompt_tokens=prompt, completion_tokens=completion, cache_read_input_tokens=cached
    )
    return prompt_cost + completion_cost


def _key(sandbox, **fields) -> dict:
    fields.setdefault("key_alias", sandbox.unique("key"))
    with sandbox.client() as client:
        return client.key_generate(**fields)


def _read_rows(sandbox, **filters) -> list[dict]:
    now = datetime.now(UTC)
    with sandbox.client() as client:
        return list(client.spend_logs_v2_all(start=now - timedelta(hours=1), end=now + timedelta(hours=1), **filters))


def _rows(sandbox, expect: int = 1, **filters) -> list[dict]:
    """The rows matching `filters` once the batch writer has written at least `expect` of them."""
    return wait_until(
        lambda: rows if len(rows := _read_rows(sandbox, **filters)) >= expect else None,
        timeout=10,
        what=f"{expect} spend-log row(s) written by the sandbox's batch writer",
    )


def _info(sandbox, key: dict) -> dict:
    with sandbox.client() as client:
        return client.key_info(key=key["token"])["info"]


def _error(response: httpx.Response) -> dict:
    return response.json()["error"]


def _sse(response: httpx.Response) -> list:
    events = [line[len("data: ") :] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


# --- allowed calls and their rows -------------------------------------------------------------------


def test_a_call_is_answered_and_logged_as_a_litellm_spend_row(sandbox, litellm):
    with sandbox.client() as client:
        team = client.team_new(team_id=sandbox.unique("team"), max_budget=100.0)
    key = _key(sandbox, user_id="govsite-user-7", team_id=team["team_id"], models=["gpt-4o"])

    response = sandbox.chat(
        key["key"],
        "gpt-4o",
        metadata={"tags": ["project:payments"], "spend_logs_metadata": {"ticket": "PAY-1"}},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"]
    [row] = _rows(sandbox, api_key=key["token"])
    assert set(SPEND_LOG_COLUMNS) == SAMPLE_ROW_KEYS, "the table holds what LiteLLM's payload builder makes"
    assert set(row) == set(SPEND_LOG_V2_COLUMNS), "/spend/logs/v2 selects its list columns only"
    assert row["request_id"] == body["id"]
    assert row["status"] == "success"
    assert row["api_key"] == key["token"]
    assert (row["user"], row["team_id"]) == ("govsite-user-7", team["team_id"])
    assert (row["model"], row["model_group"], row["custom_llm_provider"]) == ("openai/gpt-4o", "gpt-4o", "openai")
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (10, 20, 30)
    assert row["spend"] == pytest.approx(_cost(litellm, "openai/gpt-4o", 10, 20))
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
    assert _info(sandbox, key)["spend"] == pytest.approx(row["spend"])
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
    [row] = _rows(sandbox, request_id=response.json()["id"])
    assert row["api_key"] == "litellm_proxy_master_key"
    assert row["user"] == "default_user_id"


def test_cached_prompt_tokens_are_reported_and_priced(sandbox, litellm):
    key = _key(sandbox)
    response = sandbox.chat(key["key"], "claude-sonnet-4-5", headers={"x-sandbox-cached-tokens": "800"})

    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 800
    [row] = _rows(sandbox, api_key=key["token"])
    usage = row["metadata"]["usage_object"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 800
    expected = _cost(litellm, "anthropic/claude-sonnet-4-5", row["prompt_tokens"], row["completion_tokens"], cached=800)
    assert row["spend"] == pytest.approx(expected)
    assert row["spend"] < _cost(litellm, "anthropic/claude-sonnet-4-5", row["prompt_tokens"], row["completion_tokens"])


def test_an_unpriced_model_answers_and_logs_tokens_at_zero_spend(sandbox):
    key = _key(sandbox)
    response = sandbox.chat(key["key"], "acme-internal-llm")

    assert response.status_code == 200
    [row] = _rows(sandbox, api_key=key["token"])
    assert (row["model"], row["model_group"]) == ("openai/acme-internal-llm", "acme-internal-llm")
    assert row["total_tokens"] == 30
    assert row["spend"] == 0.0
    assert row["metadata"]["cost_breakdown"] is None


def test_kimi_is_priced_from_litellms_map(sandbox, litellm):
    key = _key(sandbox)
    assert sandbox.chat(key["key"], "kimi-k2.5").status_code == 200
    [row] = _rows(sandbox, api_key=key["token"])
    assert row["custom_llm_provider"] == "moonshot"
    assert row["spend"] == pytest.approx(_cost(litellm, "moonshot/kimi-k2.5", 10, 20))
    assert row["spend"] > 0


# --- streaming -------------------------------------------------------------------------------------


def test_a_stream_with_include_usage_carries_usage_and_real_cost(sandbox, litellm):
    key = _key(sandbox)
    response = sandbox.chat(key["key"], "claude-sonnet-4-5", stream=True, include_usage=True)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = _sse(response)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    usage = chunks[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    [row] = _rows(sandbox, api_key=key["token"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    expected = _cost(litellm, "anthropic/claude-sonnet-4-5", row["prompt_tokens"], row["completion_tokens"])
    assert row["spend"] == pytest.approx(expected) and row["spend"] > 0
    assert row["request_id"] == chunks[0]["id"]
    assert row["cache_hit"] == "False"
    assert _info(sandbox, key)["spend"] == pytest.approx(row["spend"])


def test_a_stream_without_include_usage_is_priced_all_the_same(sandbox, litellm):
    """LiteLLM rebuilds a streamed response from its chunks and prices it (the captured streamed sample
    was logged at a cost with stream_options unset): the caller not asking for usage changes nothing."""
    key = _key(sandbox)
    response = sandbox.chat(key["key"], "claude-sonnet-4-5", stream=True)

    assert response.status_code == 200
    chunks = _sse(response)
    assert all("usage" not in chunk for chunk in chunks)
    [row] = _rows(sandbox, api_key=key["token"])
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
    expected = _cost(litellm, "anthropic/claude-sonnet-4-5", row["prompt_tokens"], row["completion_tokens"])
    assert row["spend"] == pytest.approx(expected) and row["spend"] > 0
    assert row["status"] == "success"
    assert _info(sandbox, key)["spend"] == pytest.approx(row["spend"])


def test_the_real_streamed_sample_was_priced_without_include_usage():
    sample = json.loads((SAMPLES / "spend-log-row.streamed-claude-sonnet-4-5.json").read_text())
    assert json.loads(sample["metadata"])["usage_object"]["completion_tokens"] > 0
    assert sample["spend"] > 0


# --- refusals --------------------------------------------------------------------------------------


def _failure_row(sandbox, key) -> dict:
    [row] = _rows(sandbox, api_key=key["token"], status_filter="failure")
    assert row["status"] == "failure"
    assert row["spend"] == 0.0
    return row


def test_no_key_and_an_unknown_key_are_401(sandbox):
    anonymous = httpx.post(f"{sandbox.url}/chat/completions", json={"model": "gpt-4o", "messages": []}, timeout=10)
    unknown = sandbox.chat("sk-this-key-does-not-exist-0000")

    assert anonymous.status_code == 401
    assert _error(anonymous)["type"] == "auth_error"
    assert unknown.status_code == 401
    assert _error(unknown) == {
        "message": _error(unknown)["message"],
        "type": "token_not_found_in_db",
        "param": "key",
        "code": "401",
    }
    assert "Invalid proxy server token passed" in _error(unknown)["message"]
    assert "sk-this-key-does-not-exist-0000" not in unknown.text, "the secret is never echoed whole"


def test_a_blocked_key_is_401_and_the_refusal_is_logged(sandbox):
    key = _key(sandbox)
    with sandbox.client() as client:
        client.key_block(key=key["key"])
    response = sandbox.chat(key["key"])

    assert response.status_code == 401
    assert _error(response)["type"] == "auth_error"
    assert "Key is blocked" in _error(response)["message"]
    error = _failure_row(sandbox, key)["metadata"]["error_information"]
    assert error["error_code"] == "401"


def test_an_expired_key_is_401_expired_key(sandbox):
    key = _key(sandbox, duration="0s")
    response = sandbox.chat(key["key"])

    assert response.status_code == 401
    assert _error(response)["type"] == "expired_key"
    assert _error(response)["param"] == key["key_name"]
    assert "Expired Key" in _error(response)["message"]
    assert _info(sandbox, key)["status"] == "expired"


def test_a_model_outside_the_key_is_403_key_model_access_denied(sandbox):
    key = _key(sandbox, models=["gpt-4o-mini"])
    response = sandbox.chat(key["key"], "claude-sonnet-4-5")

    assert response.status_code == 403
    assert _error(response)["type"] == "key_model_access_denied"
    assert _error(response)["param"] == "model"
    assert "claude-sonnet-4-5" in _error(response)["message"]
    row = _failure_row(sandbox, key)
    assert row["model_group"] == "claude-sonnet-4-5"
    assert sandbox.chat(key["key"], "gpt-4o-mini").status_code == 200


def test_a_model_outside_the_team_is_403_team_model_access_denied(sandbox):
    with sandbox.client() as client:
        team = client.team_new(team_id=sandbox.unique("team"), models=["gpt-4o"])
    key = _key(sandbox, team_id=team["team_id"])
    response = sandbox.chat(key["key"], "claude-haiku-4-5")

    assert response.status_code == 403
    assert _error(response)["type"] == "team_model_access_denied"


def test_an_unknown_model_is_400(sandbox):
    key = _key(sandbox)
    response = sandbox.chat(key["key"], "gpt-99")
    assert response.status_code == 400
    assert "Invalid model name passed in model=gpt-99" in _error(response)["message"]


def test_over_budget_is_refused_with_budget_exceeded_and_logged(sandbox, litellm):
    key = _key(sandbox, max_budget=0.0001)
    assert sandbox.chat(key["key"]).status_code == 200, "spend is checked before the call, like LiteLLM"
    spend = _info(sandbox, key)["spend"]
    response = sandbox.chat(key["key"])

    assert response.status_code == litellm.budget_exceeded_status_code == 422
    error = _error(response)
    assert (error["type"], error["param"], error["code"]) == ("budget_exceeded", None, "422")
    assert error["message"].startswith("Budget has been exceeded!")
    information = _failure_row(sandbox, key)["metadata"]["error_information"]
    assert information["error_class"] == "BudgetExceededError"
    assert information["error_code"] == "422"
    assert information["error_budget_entity_type"] == "key"
    assert _info(sandbox, key)["spend"] == spend, "a refusal costs nothing"


def test_a_team_over_budget_refuses_its_keys(sandbox):
    with sandbox.client() as client:
        team = client.team_new(team_id=sandbox.unique("team"), max_budget=0.0001)
    key = _key(sandbox, team_id=team["team_id"])
    assert sandbox.chat(key["key"]).status_code == 200
    response = sandbox.chat(key["key"])
    assert _error(response)["type"] == "budget_exceeded"
    assert "Team=" in _error(response)["message"]


def _end_budget_period(sandbox, key: dict) -> None:
    """Move the key's reset time into the past, as the clock reaching it would (no waiting)."""
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="microseconds")
    with sqlite3.connect(sandbox.db_path) as conn:
        updated = conn.execute(
            "UPDATE keys SET record = json_set(record, '$.budget_reset_at', ?) WHERE token = ?", (past, key["token"])
        ).rowcount
    assert updated == 1


def test_spend_resets_when_the_budget_period_ends(sandbox):
    key = _key(sandbox, max_budget=0.0001, budget_duration="30d")
    assert sandbox.chat(key["key"]).status_code == 200
    assert sandbox.chat(key["key"]).status_code == 422
    reset_at = datetime.fromisoformat(_info(sandbox, key)["budget_reset_at"])
    assert reset_at > datetime.now(UTC) + timedelta(days=1), "a 30-day period ends in the future"
    assert _info(sandbox, key)["spend"] > 0.0, "the period has not ended yet"

    _end_budget_period(sandbox, key)

    assert _info(sandbox, key)["spend"] == 0.0
    assert datetime.fromisoformat(_info(sandbox, key)["budget_reset_at"]) > datetime.now(UTC), "the next period began"
    assert sandbox.chat(key["key"]).status_code == 200


def _three_calls_in_one_minute(sandbox) -> tuple[dict, list[httpx.Response]]:
    """Three calls of a new key limited to 2 a minute, all inside one rate-limit minute: if the minute
    turned while they ran, again with a new key (three quick calls cannot straddle two turns)."""
    for _ in range(2):
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        key = _key(sandbox, rpm_limit=2)
        responses = [sandbox.chat(key["key"]) for _ in range(3)]
        if datetime.now(UTC).replace(second=0, microsecond=0) == minute:
            return key, responses
    raise AssertionError("the minute turned during both tries")


def test_rpm_limit_is_429_within_the_minute(sandbox):
    key, (*first_two, response) = _three_calls_in_one_minute(sandbox)
    assert [r.status_code for r in first_two] == [200, 200]

    assert response.status_code == 429
    assert _error(response)["type"] == "throttling_error"
    assert response.headers["retry-after"] == "60"
    information = _failure_row(sandbox, key)["metadata"]["error_information"]
    assert information["error_code"] == "429"
    assert information["error_rate_limit_type"] == "requests"


def test_a_deleted_key_is_unknown_and_reads_as_deleted(sandbox):
    key = _key(sandbox)
    with sandbox.client() as client:
        client.key_delete(keys=[key["token"]])
    assert sandbox.chat(key["key"]).status_code == 401
    assert _info(sandbox, key)["status"] == "deleted"


def test_concurrent_calls_each_write_one_row_and_add_up(sandbox):
    key = _key(sandbox)
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: sandbox.chat(key["key"]).status_code, range(24)))

    assert statuses == [200] * 24
    rows = _rows(sandbox, expect=24, api_key=key["token"])
    assert len(rows) == 24
    assert _info(sandbox, key)["spend"] == pytest.approx(sum(r["spend"] for r in rows))


# --- admin API shapes ------------------------------------------------------------------------------


def _admin(sandbox, path: str, body: dict, secret: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret or sandbox.master_key}"}
    return httpx.post(f"{sandbox.url}{path}", json=body, headers=headers, timeout=10)


def test_an_invalid_admin_body_is_a_pydantic_422(sandbox):
    response = _admin(sandbox, "/key/generate", {"max_budget": "lots"})
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "max_budget"]
    assert detail["type"] == "float_parsing"
    assert _admin(sandbox, "/team/update", {}).json()["detail"][0]["loc"] == ["body", "team_id"]


def test_unknown_fields_are_dropped_like_litellm_does(sandbox):
    response = _admin(sandbox, "/key/generate", {"key_alias": sandbox.unique("key"), "max_budjet": 5})
    assert response.status_code == 200
    assert "max_budjet" not in response.json()
    assert response.json()["max_budget"] is None


def test_a_duplicate_alias_answers_litellms_400(sandbox):
    alias = sandbox.unique("key")
    assert _admin(sandbox, "/key/generate", {"key_alias": alias}).status_code == 200
    response = _admin(sandbox, "/key/generate", {"key_alias": alias})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": f"Key with alias '{alias}' already exists. Unique key aliases across all keys are required.",
            "type": "bad_request_error",
            "param": "key_alias",
            "code": "400",
        }
    }


def test_admin_routes_need_the_master_key(sandbox):
    key = _key(sandbox)
    assert httpx.post(f"{sandbox.url}/key/generate", json={}, timeout=10).status_code == 401
    assert _admin(sandbox, "/key/generate", {}, secret=key["key"]).status_code == 401
    assert _admin(sandbox, "/sandbox/faults", {"clear": True}, secret=key["key"]).status_code == 401


def test_custom_secrets_must_look_like_litellm_keys(sandbox):
    assert _admin(sandbox, "/key/generate", {"key": "not-an-sk-key-0123456789"}).status_code == 400
    assert _admin(sandbox, "/key/generate", {"key": "sk-short"}).status_code == 400


def test_key_list_size_over_100_is_422(sandbox):
    response = httpx.get(
        f"{sandbox.url}/key/list", params={"size": 101}, headers={"Authorization": f"Bearer {sandbox.master_key}"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "size"]


def test_a_secret_the_gateway_already_holds_keeps_the_old_key_and_still_answers_200(sandbox):
    """LiteLLM upserts the key row with an empty update: nothing changes, the answer looks like success."""
    secret = f"sk-{sandbox.unique('secret')}"
    first = _admin(sandbox, "/key/generate", {"key": secret, "key_alias": sandbox.unique("first"), "max_budget": 1})
    second = _admin(sandbox, "/key/generate", {"key": secret, "key_alias": sandbox.unique("second"), "max_budget": 9})

    assert first.status_code == second.status_code == 200
    assert second.json()["token"] == first.json()["token"], "the answer names the same key"
    assert second.json()["key_alias"] != first.json()["key_alias"], "and echoes what was asked"
    assert second.json()["created_at"] == first.json()["created_at"], "with the old row's times"
    info = _info(sandbox, first.json())
    assert (info["key_alias"], info["max_budget"]) == (first.json()["key_alias"], 1), "the old row is kept"


def _litellms_answer_to_a_custom_key_when_disabled() -> tuple[int, dict]:
    """What LiteLLM's own check raises, as its exception handler renders it."""
    import asyncio

    from litellm.proxy import proxy_server
    from litellm.proxy._types import ProxyErrorTypes, ProxyException
    from litellm.proxy.management_endpoints.key_management_endpoints import _check_custom_key_allowed
    from litellm.proxy.utils import openai_error_param

    saved = dict(proxy_server.general_settings)
    proxy_server.general_settings["disable_custom_api_keys"] = True
    try:
        asyncio.run(_check_custom_key_allowed("sk-0123456789abcdef"))
    except Exception as exc:  # an HTTPException, turned into the body as handle_exception_on_proxy does
        error = ProxyException(
            message=exc.detail,
            type=ProxyErrorTypes.internal_server_error,
            param=openai_error_param(exc),
            code=exc.status_code,
        ).to_dict()
        return exc.status_code, json.loads(json.dumps(error))
    finally:
        proxy_server.general_settings.clear()
        proxy_server.general_settings.update(saved)
    raise AssertionError("LiteLLM accepted a custom key with disable_custom_api_keys on")


def test_disable_custom_api_keys_refuses_a_callers_secret_with_litellms_403(sandbox, litellm):
    sandbox.gateway_settings(disable_custom_api_keys=True)
    refused = _admin(sandbox, "/key/generate", {"key": f"sk-{sandbox.unique('s')}", "key_alias": sandbox.unique("k")})
    made = _admin(sandbox, "/key/generate", {"key_alias": sandbox.unique("k")})

    status, error = _litellms_answer_to_a_custom_key_when_disabled()
    assert (refused.status_code, refused.json()) == (status, {"error": error}) == (403, {"error": error})
    assert made.status_code == 200, "keys the gateway makes itself are still allowed"


def test_key_generate_does_not_create_the_keys_user(sandbox):
    """generate_key_helper_fn(table_name="key") skips the user table; govsite creates the user first."""
    user_id = sandbox.unique("user")
    assert _admin(sandbox, "/key/generate", {"user_id": user_id}).status_code == 200
    with sqlite3.connect(sandbox.db_path) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE user_id = ?", (user_id,)).fetchone() == (0,)


def test_key_delete_echoes_what_it_was_given(sandbox):
    """delete_key_fn returns `data.keys` (or, without keys, `data.key_aliases`) as passed."""
    key = _key(sandbox)
    missing = "0" * 64
    response = _admin(sandbox, "/key/delete", {"keys": [key["key"], missing], "key_aliases": ["ignored"]})

    assert response.json() == {"deleted_keys": [key["key"], missing]}, "even a key that was not there"
    assert _info(sandbox, key)["status"] == "deleted"
    other = _key(sandbox)
    by_alias = _admin(sandbox, "/key/delete", {"key_aliases": [other["key_alias"]]})
    assert by_alias.json() == {"deleted_keys": [other["key_alias"]]}
    none_left = _admin(sandbox, "/key/delete", {"keys": [missing]})
    assert none_left.status_code == 404
    assert _error(none_left)["message"] == repr({"error": "No keys found"})


def test_spend_rows_are_written_in_batches_seconds_after_the_call(sandbox):
    key = _key(sandbox)
    sandbox.gateway_settings(spend_log_batch_seconds=30)  # long enough that no batch goes out by chance
    statuses = [sandbox.chat(key["key"]).status_code for _ in range(3)]

    assert statuses == [200] * 3
    assert _read_rows(sandbox, api_key=key["token"]) == [], "not readable the moment the call returns"
    sandbox.gateway_settings(spend_log_batch_seconds=0.3)
    rows = _rows(sandbox, expect=3, api_key=key["token"])
    assert len(rows) == 3
    assert _info(sandbox, key)["spend"] == pytest.approx(sum(r["spend"] for r in rows)), "budgets count at once"


def test_a_proxy_without_a_database_answers_like_litellm(sandbox):
    sandbox.gateway_settings(database=False)
    spend = _spend_get(sandbox, start_date="2001-01-01", end_date="2001-01-02")
    generate = _admin(sandbox, "/key/generate", {})

    assert (spend.status_code, _error(spend)) == (
        401,
        {"message": "Prisma Client is not initialized", "type": "internal_error", "param": "None", "code": "401"},
    )
    assert generate.status_code == 500
    assert "DB not connected" in _error(generate)["message"]


# --- /spend/logs/v2 --------------------------------------------------------------------------------


def _spend_get(sandbox, **params) -> httpx.Response:
    return httpx.get(
        f"{sandbox.url}/spend/logs/v2",
        params=params,
        headers={"Authorization": f"Bearer {sandbox.master_key}"},
        timeout=30,
    )


def _seed(sandbox, start: datetime, count: int, **fields) -> list[dict]:
    rows = [make_spend_row(start_time=start + timedelta(seconds=i), **fields) for i in range(count)]
    assert sandbox.insert_spend_rows(rows) == count
    return rows


def _as_v2_serialises(row: dict) -> dict:
    """What LiteLLM's /spend/logs/v2 returns for a row its payload builder made: the list columns, the
    metadata as an object, times cut to the table's milliseconds (ISO with six digits, as FastAPI
    writes a datetime)."""
    out = {column: row[column] for column in SPEND_LOG_V2_COLUMNS}
    out["metadata"] = json.loads(row["metadata"])
    for column in ("startTime", "endTime", "completionStartTime"):
        moment = datetime.fromisoformat(row[column])
        out[column] = moment.replace(microsecond=moment.microsecond // 1000 * 1000).isoformat()
    return out


def test_the_sample_rows_from_a_real_proxy_come_out_as_spend_logs_v2_serialises_them(sandbox):
    samples = [json.loads(path.read_text()) for path in sorted(SAMPLES.glob("spend-log-row.*.json"))]
    assert samples, "the captured samples are missing"
    for sample in samples:
        sample["request_id"] = f"{sample['request_id']}-{sandbox.unique('sample')}"
    sandbox.insert_spend_rows(samples)
    for sample in samples:
        [row] = _spend_get(
            sandbox, start_date="2000-01-01", end_date="2100-01-01", request_id=sample["request_id"]
        ).json()["data"]
        assert row == _as_v2_serialises(sample)
        assert row["startTime"] != sample["startTime"], "the sample's microseconds are cut"


def test_spend_logs_page_newest_first(sandbox):
    api_key = sandbox.unique("hash")
    rows = _seed(sandbox, datetime(2001, 2, 1, 8, tzinfo=UTC), 25, api_key=api_key)
    window = {"start_date": "2001-02-01 00:00:00", "end_date": "2001-02-01 23:59:59", "api_key": api_key}

    pages = [_spend_get(sandbox, page=page, page_size=10, **window).json() for page in (1, 2, 3, 4)]

    assert [len(p["data"]) for p in pages] == [10, 10, 5, 0]
    assert {(p["total"], p["total_pages"], p["total_is_capped"]) for p in pages} == {(25, 3, False)}
    seen = [r["request_id"] for p in pages for r in p["data"]]
    assert seen == [r["request_id"] for r in reversed(rows)]
    ascending = _spend_get(sandbox, page_size=5, sort_order="asc", **window).json()["data"]
    assert [r["request_id"] for r in ascending] == [r["request_id"] for r in rows[:5]]
    by_spend = _spend_get(sandbox, page_size=1, sort_by="spend", **window).json()
    assert by_spend["total"] == 25


def test_a_bare_end_date_excludes_that_day(sandbox):
    api_key = sandbox.unique("hash")
    _seed(sandbox, datetime(2001, 3, 5, 12, tzinfo=UTC), 3, api_key=api_key)

    bare = _spend_get(sandbox, start_date="2001-03-05", end_date="2001-03-05", api_key=api_key).json()
    timed = _spend_get(sandbox, start_date="2001-03-05", end_date="2001-03-05 23:59:59", api_key=api_key).json()
    with sandbox.client() as client:
        via_client = client.spend_logs_v2(
            start=datetime(2001, 3, 5, tzinfo=UTC), end=datetime(2001, 3, 5, 23, 59, 59, tzinfo=UTC), api_key=api_key
        )

    assert bare["total"] == 0, "LiteLLM reads a bare end_date as midnight: the day drops out"
    assert timed["total"] == 3
    assert via_client["total"] == 3


def test_the_total_caps_at_10000_but_paging_goes_on(sandbox):
    api_key = sandbox.unique("hash")
    rows = _seed(sandbox, datetime(2001, 4, 1, tzinfo=UTC), 10_050, api_key=api_key)
    window = {"start_date": "2001-04-01 00:00:00", "end_date": "2001-04-02 00:00:00", "api_key": api_key}

    first = _spend_get(sandbox, page=1, page_size=1000, **window).json()
    eleventh = _spend_get(sandbox, page=11, page_size=1000, **window).json()
    twelfth = _spend_get(sandbox, page=12, page_size=1000, **window).json()
    with sandbox.client() as client:
        everything = list(
            client.spend_logs_v2_all(
                start=datetime(2001, 4, 1, tzinfo=UTC), end=datetime(2001, 4, 2, tzinfo=UTC), api_key=api_key
            )
        )

    assert (first["total"], first["total_pages"], first["total_is_capped"]) == (10_000, 10, True)
    assert len(eleventh["data"]) == 50, "page 11 is past total_pages and still has rows"
    assert twelfth["data"] == []
    assert len({r["request_id"] for r in everything}) == len(rows) == 10_050


def test_spend_log_filters(sandbox):
    day = datetime(2001, 5, 1, tzinfo=UTC)
    tag = sandbox.unique("f")
    base = {"api_key": f"{tag}-hash"}
    _seed(sandbox, day, 2, user=f"{tag}-u1", team_id=f"{tag}-t1", key_alias=f"{tag}-alias-one", **base)
    _seed(sandbox, day + timedelta(hours=1), 3, user=f"{tag}-u2", model_group="claude-sonnet-4-5", **base)
    failed = _seed(sandbox, day + timedelta(hours=2), 1, status="failure", **base)
    window = {"start_date": "2001-05-01 00:00:00", "end_date": "2001-05-01 23:59:59"}

    def total(**params):
        return _spend_get(sandbox, **window, **params).json()["total"]

    assert total(api_key=f"{tag}-hash") == 6
    assert total(user_id=f"{tag}-u1") == 2
    assert total(team_id=f"{tag}-t1") == 2
    assert total(key_alias=f"{tag}-alias") == 2, "LiteLLM matches key_alias as a substring"
    assert total(api_key=f"{tag}-hash", model="anthropic/claude-sonnet-4-5") == 3
    assert total(api_key=f"{tag}-hash", model_group="claude-sonnet-4-5") == 3
    assert total(api_key=f"{tag}-hash", status_filter="failure") == 1
    assert total(api_key=f"{tag}-hash", status_filter="success") == 5
    assert total(request_id=failed[0]["request_id"]) == 1


def test_spend_log_request_errors(sandbox):
    window = {"start_date": "2001-01-01", "end_date": "2001-01-02"}
    too_big = _spend_get(sandbox, page_size=1001, **window)
    assert too_big.status_code == 422
    assert too_big.json()["detail"][0]["loc"] == ["query", "page_size"]
    missing = _spend_get(sandbox, start_date="2001-01-01")
    assert missing.status_code == 400
    assert _error(missing)["message"] == "Start date and end date are required"
    assert _spend_get(sandbox, sort_by="colour", **window).status_code == 400
    assert _spend_get(sandbox, start_date="01/02/2001", end_date="2001-01-02").status_code == 400


def test_make_spend_row_has_exactly_the_real_rows_keys():
    row = make_spend_row(start_time=datetime(2026, 11, 23, 12, tzinfo=UTC), key_alias="a", tags=["x"])
    assert set(row) == SAMPLE_ROW_KEYS
    assert json.loads(row["metadata"])["user_api_key_alias"] == "a", "the payload builder writes JSON text"
    assert json.loads(row["request_tags"])[0] == "x"


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
