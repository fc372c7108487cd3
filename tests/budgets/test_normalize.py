"""The two shapes LiteLLM produces (real captured samples) read into one ledger shape."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from budgets.models import ClientTool, ErrorType
from budgets.normalize import SpendRowInvalid, client_tool, normalize
from tests.budgets.conftest import sample, spend_row


@pytest.mark.parametrize("call", ["plain-gpt-4o", "streamed-claude-sonnet-4-5"])
def test_a_spend_log_row_and_its_logging_payload_describe_the_same_request(call):
    pulled = normalize(sample(f"spend-log-row.{call}"))
    pushed = normalize(sample(f"standard-logging-object.{call}"))
    assert pulled.request_id == pushed.request_id
    for field in (
        "token_hash",
        "model",
        "model_group",
        "provider",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "status",
        "error_type",
        "client_tool",
        "gateway_spend",
        "ttft_ms",
    ):
        assert getattr(pulled, field) == getattr(pushed, field), field
    assert pulled.time == pushed.time
    assert pulled.time.tzinfo is not None and pulled.time.utcoffset().total_seconds() == 0


def test_the_plain_sample_reads_as_claude_code_on_gpt_4o():
    row = normalize(sample("spend-log-row.plain-gpt-4o"))
    assert row.request_id == "chatcmpl-e9534671-60a6-45d9-b289-88bea03cf4cb"
    assert (row.model, row.model_group, row.provider) == ("openai/gpt-4o", "gpt-4o", "openai")
    assert (row.prompt_tokens, row.completion_tokens) == (10, 20)
    assert row.gateway_spend == Decimal("0.000225")
    assert row.client_tool == ClientTool.CLAUDE_CODE
    assert row.time == datetime(2026, 11, 23, 12, 10, 35, 641653, tzinfo=UTC)
    assert row.request_tags == ["User-Agent: claude-cli", "User-Agent: claude-cli/2.0.1 (external, cli)"]
    assert row.token_hash == "litellm_proxy_master_key"


def test_the_streamed_sample_reads_as_codex_with_time_to_first_token():
    row = normalize(sample("standard-logging-object.streamed-claude-sonnet-4-5"))
    assert row.client_tool == ClientTool.CODEX
    assert row.ttft_ms == 102  # completionStartTime - startTime
    assert row.latency_ms == 210


@pytest.mark.parametrize(
    ("agent", "tags", "tool"),
    [
        ("claude-cli/2.0.1 (external, cli)", [], ClientTool.CLAUDE_CODE),
        ("", ["User-Agent: codex_cli_rs", "User-Agent: codex_cli_rs/0.40.0"], ClientTool.CODEX),
        ("kimi-cli/1.0", [], ClientTool.KIMI),
        ("OpenAI/Python 1.99.0", [], ClientTool.OPENAI_SDK),
        ("curl/8.5", ["team:payments"], ClientTool.OTHER),
    ],
)
def test_the_client_tool_comes_from_the_user_agent_or_its_tags(agent, tags, tool):
    assert client_tool(agent, tags) == tool


def test_cached_tokens_and_the_callers_metadata_are_kept():
    row = normalize(
        spend_row(
            prompt_tokens=1000,
            completion_tokens=5,
            cached_tokens=600,
            spend_logs_metadata={"ticket": "ENG-7"},
            tags=["project:atlas"],
        )
    )
    assert row.cached_tokens == 600
    assert row.spend_logs_metadata == {"ticket": "ENG-7"}
    assert "project:atlas" in row.request_tags


@pytest.mark.parametrize(
    ("information", "expected"),
    [
        (
            {"error_code": "429", "error_class": "RateLimitError", "normalized_error": "429_RATE_LIMIT_EXCEEDED"},
            ErrorType.RATE_LIMIT,
        ),
        (
            {"error_code": "422", "error_class": "BudgetExceededError", "error_budget_entity_type": "key"},
            ErrorType.BUDGET_EXCEEDED,
        ),
        ({"error_code": "400", "error_message": "Budget has been exceeded! Team=x"}, ErrorType.BUDGET_EXCEEDED),
        ({"error_code": "401", "error_class": "ProxyException"}, ErrorType.AUTH),
        ({"error_code": "503", "error_class": "ServiceUnavailableError"}, ErrorType.PROVIDER),
    ],
)
def test_a_failures_kind_is_read_from_litellms_error_information(information, expected):
    row = normalize(spend_row(status="failure", prompt_tokens=0, completion_tokens=0, error_information=information))
    assert row.error_type == expected


def test_a_cache_hit_is_the_same_request_in_both_shapes_and_distinct_from_other_hits():
    pulled = sample("spend-log-row.plain-gpt-4o")
    pushed = sample("standard-logging-object.plain-gpt-4o")
    pulled.update(cache_hit="True", request_id=pulled["request_id"] + "_cache_hit1795435835.7")
    pushed["cache_hit"] = True
    assert normalize(pulled).request_id == normalize(pushed).request_id
    another = dict(pushed, litellm_call_id="another-call")
    assert normalize(another).request_id != normalize(pushed).request_id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"request_id": None}, "request_id"),
        ({"request_id": ""}, "request_id"),
        ({"prompt_tokens": -1}, "prompt_tokens"),
        ({"completion_tokens": "many"}, "completion_tokens"),
        ({"startTime": "yesterday"}, "startTime"),
        ({"spend": -0.5}, "spend"),
    ],
)
def test_a_bad_row_is_refused_naming_the_field(change, field):
    row = {**sample("spend-log-row.plain-gpt-4o"), **change}
    with pytest.raises(SpendRowInvalid) as error:
        normalize(row)
    assert error.value.field == field


def test_a_logging_payload_without_an_id_is_refused_as_missing_request_id():
    payload = sample("standard-logging-object.plain-gpt-4o")
    del payload["id"]
    with pytest.raises(SpendRowInvalid) as error:
        normalize(payload)
    assert error.value.field == "request_id"
