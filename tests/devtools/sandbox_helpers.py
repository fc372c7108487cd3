"""What the sandbox tests share: keys made at the sandbox, its spend rows as written by its batch writer,
error bodies and server-sent events, litellm's own price for a call, and real rows from a LiteLLM proxy."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.waiting import wait_until

SAMPLES = Path(__file__).resolve().parents[1] / "budgets" / "samples"  # real rows from a LiteLLM proxy
SAMPLE_ROW_KEYS = {
    "agent_id", "api_base", "api_key", "billing_agent_id", "cache_hit", "cache_key", "call_type",
    "completionStartTime", "completion_tokens", "custom_llm_provider", "endTime", "end_user", "litellm_call_id",
    "mcp_namespaced_tool_name", "messages", "metadata", "model", "model_group", "model_id", "organization_id",
    "prompt_tokens", "proxy_server_request", "request_duration_ms", "request_id", "request_tags",
    "requester_ip_address", "response", "session_id", "spend", "startTime", "status", "team_id", "total_tokens", "user",
}  # fmt: skip


def litellm_cost(litellm, model: str, prompt: int, completion: int, cached: int = 0) -> float:
    prompt_cost, completion_cost = litellm.cost_per_token(
        model=model, prompt_tokens=prompt, completion_tokens=completion, cache_read_input_tokens=cached
    )
    return prompt_cost + completion_cost


def new_key(sandbox, **fields) -> dict:
    fields.setdefault("key_alias", sandbox.unique("key"))
    with sandbox.client() as client:
        return client.key_generate(**fields)


def read_rows(sandbox, **filters) -> list[dict]:
    now = datetime.now(UTC)
    with sandbox.client() as client:
        return list(client.spend_logs_v2_all(start=now - timedelta(hours=1), end=now + timedelta(hours=1), **filters))


def written_rows(sandbox, expect: int = 1, **filters) -> list[dict]:
    """The rows matching `filters` once the batch writer has written at least `expect` of them."""
    return wait_until(
        lambda: rows if len(rows := read_rows(sandbox, **filters)) >= expect else None,
        timeout=10,
        what=f"{expect} spend-log row(s) written by the sandbox's batch writer",
    )


def key_info(sandbox, key: dict) -> dict:
    with sandbox.client() as client:
        return client.key_info(key=key["token"])["info"]


def error_of(response: httpx.Response) -> dict:
    return response.json()["error"]


def sse_events(response: httpx.Response) -> list:
    events = [line[len("data: ") :] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


def spend_logs_get(sandbox, **params) -> httpx.Response:
    return httpx.get(
        f"{sandbox.url}/spend/logs/v2",
        params=params,
        headers={"Authorization": f"Bearer {sandbox.master_key}"},
        timeout=30,
    )
