"""Turn what LiteLLM sends into one ledger shape.

Two shapes arrive: a `LiteLLM_SpendLogs` row (from `/spend/logs/v2`, `metadata` often a JSON
string) and a `StandardLoggingPayload` (what a callback receives, pushed to `/api/ingest/spend`).
Both describe the same request with the same id, so pull and push land on the same ledger row.
Real examples of each, captured from a LiteLLM proxy, are in tests/budgets/samples/.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from budgets.models import ClientTool, ErrorType

MAX_REQUEST_ID = 255
NANO = Decimal("0.000000001")  # the ledger keeps nine decimal places (an embedding call costs < $0.000001)
MAX_COST = Decimal(10**9)  # the ledger's column holds 18 digits, nine of them decimals
MAX_TOKENS = 2**63 - 1  # a PostgreSQL bigint
MAX_DEPTH = 32  # of the JSON the ledger stores (tags, spend_logs_metadata)
_TEXT_FIELDS = ("request_id", "token_hash", "key_alias", "model", "model_group", "provider", "status", "user_agent")
_CACHE_HIT_SUFFIX = re.compile(r"_cache_hit[0-9.]+$")


class SpendRowInvalid(ValueError):
    """A row that cannot be booked; `field` names what is wrong (the push endpoint returns it)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(slots=True)
class NormalizedRow:
    request_id: str
    time: datetime
    token_hash: str
    key_alias: str
    model: str
    model_group: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_creation_tokens: int
    status: str
    error_type: str
    latency_ms: int | None
    ttft_ms: int | None
    client_tool: str
    user_agent: str
    request_tags: list
    spend_logs_metadata: Any
    gateway_spend: Decimal
    # What LiteLLM priced with, for budgets.pricing (ISSUE: the gateway's figure is authoritative;
    # these only price a request it logged at $0, and explain a disagreement).
    cache_hit: bool = False
    call_type: str = ""
    usage: dict | None = None
    service_tier: str = ""
    model_info: dict | None = None  # the price-map entry LiteLLM priced with (a deployment's own prices included)


# --- small parsers ---------------------------------------------------------------------------------


def _json(value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return default
        except RecursionError as exc:
            raise SpendRowInvalid("metadata", f"is nested deeper than {MAX_DEPTH} levels") from exc
    return value


def _dict(value: Any) -> dict:
    value = _json(value, {})
    return value if isinstance(value, dict) else {}


def parse_time(value: Any, field: str) -> datetime:
    """ISO strings (spend-log rows), epoch seconds (logging payloads) or datetimes, as UTC."""
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise SpendRowInvalid(field, "is not a valid timestamp") from exc
    elif isinstance(value, str) and value:
        try:
            result = datetime.fromisoformat(value.replace(" ", "T", 1) if "T" not in value else value)
        except ValueError as exc:
            raise SpendRowInvalid(field, f"is not an ISO date-time: {value[:40]!r}") from exc
    else:
        raise SpendRowInvalid(field, "is required")
    if result.tzinfo is None:
        return result.replace(tzinfo=UTC)
    return result.astimezone(UTC)


def _optional_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_time(value, "time")
    except SpendRowInvalid:
        return None


def _tokens(value: Any, field: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise SpendRowInvalid(field, "must be a whole number")
    if isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and value.strip().lstrip("-").isdigit()
    ):
        number = int(value)
    else:
        raise SpendRowInvalid(field, "must be a whole number")
    if number < 0:
        raise SpendRowInvalid(field, "must not be negative")
    if number > MAX_TOKENS:
        raise SpendRowInvalid(field, "is out of range")
    return number


def _money(value: Any, field: str) -> Decimal:
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, bool):
        raise SpendRowInvalid(field, "must be a number")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation as exc:
        raise SpendRowInvalid(field, "must be a number") from exc
    if not amount.is_finite():
        raise SpendRowInvalid(field, "must be a finite number")
    if amount < 0:
        raise SpendRowInvalid(field, "must not be negative")
    if amount >= MAX_COST:
        raise SpendRowInvalid(field, f"is out of range (at most {MAX_COST} USD a request)")
    return amount.quantize(NANO)


def _ms(start: datetime, end: datetime | None) -> int | None:
    if end is None:
        return None
    millis = round((end - start).total_seconds() * 1000)
    return millis if 0 <= millis < 2**31 else None


def _token_hash(value: Any) -> str:
    # LiteLLM logs the sha256 of the key; a plaintext secret is hashed here so it is never stored.
    text = "" if value is None else str(value)
    if text.startswith("sk-"):
        return hashlib.sha256(text.encode()).hexdigest()
    return text[:128]


def _str(value: Any, limit: int) -> str:
    if value is None:
        return ""
    return str(value)[:limit]


# --- what the request tells about its caller ---------------------------------------------------------


def client_tool(user_agent: str, tags: list) -> str:
    """The coding agent or SDK that made the call, from its User-Agent (or LiteLLM's UA tags)."""
    candidates = [user_agent] if user_agent else []
    for tag in tags:
        if isinstance(tag, str) and tag[:11].lower() == "user-agent:":
            candidates.append(tag[11:].strip())
    for agent in candidates:
        lower = agent.lower()
        if "claude-cli" in lower or "claude-code" in lower or "claude_code" in lower:
            return ClientTool.CLAUDE_CODE
        if "codex" in lower:
            return ClientTool.CODEX
        if "kimi" in lower:
            return ClientTool.KIMI
        if lower.startswith("openai/") or " openai/" in lower:
            return ClientTool.OPENAI_SDK
    return ClientTool.OTHER


_NORMALIZED_ERRORS = {
    "429_BUDGET_EXCEEDED": ErrorType.BUDGET_EXCEEDED,
    "429_RATE_LIMIT_EXCEEDED": ErrorType.RATE_LIMIT,
    "429_NO_HEALTHY_DEPLOYMENTS": ErrorType.UNAVAILABLE,
    "401_AUTHENTICATION_FAILED": ErrorType.AUTH,
    "403_MODEL_ACCESS_DENIED": ErrorType.PERMISSION,
    "403_PERMISSION_DENIED": ErrorType.PERMISSION,
    "400_CONTEXT_WINDOW_EXCEEDED": ErrorType.CONTEXT_WINDOW,
    "400_CONTENT_POLICY_VIOLATION": ErrorType.CONTENT_POLICY,
    "404_RESOURCE_NOT_FOUND": ErrorType.NOT_FOUND,
    "408_UPSTREAM_TIMEOUT": ErrorType.TIMEOUT,
    "503_PROVIDER_OVERLOADED": ErrorType.UNAVAILABLE,
}


def error_type(status: str, info: dict) -> str:
    """Why a request failed, from LiteLLM's error information ('' for a success)."""
    code = str(info.get("error_code") or "").strip()
    klass = str(info.get("error_class") or "")
    message = str(info.get("error_message") or "")
    normalized = str(info.get("normalized_error") or "")
    if status != "failure" and not (code or klass or normalized):
        return ErrorType.NONE
    if normalized in _NORMALIZED_ERRORS:
        return _NORMALIZED_ERRORS[normalized]
    text = f"{klass} {message}".lower()
    if (
        info.get("error_budget_entity_type")
        or "budgetexceeded" in klass.lower()
        or "budget_exceeded" in text
        or ("exceeded" in text and "budget" in text)
    ):
        return ErrorType.BUDGET_EXCEEDED
    if code == "429" or "ratelimit" in klass.lower() or "rate limit" in text:
        return ErrorType.RATE_LIMIT
    if code == "401" or "authentication" in klass.lower():
        return ErrorType.AUTH
    if code == "403":
        return ErrorType.PERMISSION
    if code == "404":
        return ErrorType.NOT_FOUND
    if code in ("408", "504") or "timeout" in klass.lower():
        return ErrorType.TIMEOUT
    if "contextwindow" in klass.lower():
        return ErrorType.CONTEXT_WINDOW
    if code in ("400", "422"):
        return ErrorType.BAD_REQUEST
    if code.startswith("5"):
        return ErrorType.PROVIDER
    return ErrorType.OTHER


def _cache_tokens(usage: dict, extra: dict) -> tuple[Any, Any]:
    details = usage.get("prompt_tokens_details") or {}
    if not isinstance(details, dict):
        details = {}
    cached = details.get("cached_tokens")
    if not cached:
        cached = usage.get("cache_read_input_tokens") or extra.get("cache_read_input_tokens")
    creation = usage.get("cache_creation_input_tokens") or details.get("cache_creation_tokens")
    if not creation:
        creation = extra.get("cache_creation_input_tokens")
    return cached, creation


def _canonical_id(request_id: str, cache_hit: Any, call_id: Any) -> str:
    # A cache hit replays a stored response and with it that response's id, so LiteLLM's spend log
    # appends "_cache_hit<time>" while the logging payload does not; the call id tells hits apart
    # in both shapes.
    if str(cache_hit) == "True" and call_id:
        return f"{_CACHE_HIT_SUFFIX.sub('', request_id)}_cache_hit_{call_id}"[:MAX_REQUEST_ID]
    return request_id


def _pricing_inputs(row: dict, metadata: dict, usage: dict) -> dict:
    """What LiteLLM priced the request with, as far as the row carries it (both shapes keep
    cost_breakdown and model_map_information: a spend-log row in its metadata, a payload at the top)."""
    breakdown = _dict(row.get("cost_breakdown") or metadata.get("cost_breakdown"))
    model_map = _dict(row.get("model_map_information") or metadata.get("model_map_information"))
    model_info = model_map.get("model_map_value")
    # An entry without a positive token price (the router's record of an unmapped deployment) prices nothing.
    if not isinstance(model_info, dict) or not any(
        "cost_per" in name and isinstance(value, int | float) and value > 0 for name, value in model_info.items()
    ):
        model_info = None
    return {
        "cache_hit": str(row.get("cache_hit")) == "True",
        "call_type": _str(row.get("call_type"), 40),
        "usage": usage or None,
        "service_tier": _str(breakdown.get("service_tier"), 20),
        "model_info": model_info,
    }


def _request_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpendRowInvalid("request_id", "is required (request_id in a spend-log row, id in a logging payload)")
    if len(value) > MAX_REQUEST_ID:
        raise SpendRowInvalid("request_id", f"is longer than {MAX_REQUEST_ID} characters")
    return value


# --- the two shapes ------------------------------------------------------------------------------------


def is_logging_payload(row: dict) -> bool:
    return "request_id" not in row and ("id" in row or "response_cost" in row or "hidden_params" in row)


def _check_storable(row: NormalizedRow) -> None:
    """PostgreSQL stores no NUL character in text or jsonb, and a deep JSON value is not a spend row."""
    for name in _TEXT_FIELDS:
        if "\x00" in getattr(row, name):
            raise SpendRowInvalid(name, "contains a NUL character")
    for name in ("request_tags", "spend_logs_metadata"):
        pending = [(getattr(row, name), 1)]
        while pending:
            value, depth = pending.pop()
            if depth > MAX_DEPTH:
                raise SpendRowInvalid(name, f"is nested deeper than {MAX_DEPTH} levels")
            if isinstance(value, str):
                if "\x00" in value:
                    raise SpendRowInvalid(name, "contains a NUL character")
            elif isinstance(value, dict):
                for key, item in value.items():
                    if "\x00" in str(key):
                        raise SpendRowInvalid(name, "contains a NUL character")
                    pending.append((item, depth + 1))
            elif isinstance(value, list):
                pending.extend((item, depth + 1) for item in value)
            elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_TOKENS:
                raise SpendRowInvalid(name, "holds a number out of range")
            elif isinstance(value, float) and not math.isfinite(value):
                raise SpendRowInvalid(name, "holds a number that is not finite")


def normalize(row: Any) -> NormalizedRow:
    """One request in the ledger's shape; raises SpendRowInvalid naming the bad field."""
    if not isinstance(row, dict):
        raise SpendRowInvalid("row", "must be a JSON object")
    normalized = _from_logging_payload(row) if is_logging_payload(row) else _from_spend_log(row)
    _check_storable(normalized)
    return normalized


def _from_spend_log(row: dict) -> NormalizedRow:
    request_id = _request_id(row.get("request_id"))
    metadata = _dict(row.get("metadata"))
    usage = metadata.get("usage_object") or {}
    if not isinstance(usage, dict):
        usage = {}
    extra = metadata.get("additional_usage_values") or {}
    if not isinstance(extra, dict):
        extra = {}
    tags = _json(row.get("request_tags"), [])
    if not isinstance(tags, list):
        tags = []
    user_agent = _str(metadata.get("user_agent"), 300)
    start = parse_time(row.get("startTime"), "startTime")
    end = _optional_time(row.get("endTime"))
    first_token = _optional_time(row.get("completionStartTime"))
    duration = row.get("request_duration_ms")
    status = str(row.get("status") or metadata.get("status") or "success")
    cached, creation = _cache_tokens(usage, extra)
    prompt = row.get("prompt_tokens")
    completion = row.get("completion_tokens")
    error_info = metadata.get("error_information") or {}
    if not isinstance(error_info, dict):
        error_info = {}
    return NormalizedRow(
        request_id=_canonical_id(request_id, row.get("cache_hit"), row.get("litellm_call_id")),
        time=start,
        token_hash=_token_hash(row.get("api_key")),
        key_alias=_str(metadata.get("user_api_key_alias"), 200),
        model=_str(row.get("model"), 200),
        model_group=_str(row.get("model_group") or metadata.get("original_model_group"), 200),
        provider=_str(row.get("custom_llm_provider"), 60),
        prompt_tokens=_tokens(usage.get("prompt_tokens") if prompt is None else prompt, "prompt_tokens"),
        completion_tokens=_tokens(
            usage.get("completion_tokens") if completion is None else completion, "completion_tokens"
        ),
        cached_tokens=_tokens(cached, "cached_tokens"),
        cache_creation_tokens=_tokens(creation, "cache_creation_tokens"),
        status=status[:10],
        error_type=error_type(status, error_info),
        latency_ms=duration if isinstance(duration, int) and 0 <= duration < 2**31 else _ms(start, end),
        ttft_ms=_ms(start, first_token),
        client_tool=client_tool(user_agent, tags),
        user_agent=user_agent,
        request_tags=tags,
        spend_logs_metadata=metadata.get("spend_logs_metadata"),
        gateway_spend=_money(row.get("spend"), "spend"),
        **_pricing_inputs(row, metadata, usage),
    )


def _from_logging_payload(row: dict) -> NormalizedRow:
    request_id = _request_id(row.get("id"))
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise SpendRowInvalid("metadata", "must be an object")
    usage = metadata.get("usage_object") or {}
    if not isinstance(usage, dict):
        usage = {}
    if not usage:
        response_usage = (row.get("response") or {}).get("usage") if isinstance(row.get("response"), dict) else None
        usage = response_usage if isinstance(response_usage, dict) else {}
    tags = row.get("request_tags") or []
    if not isinstance(tags, list):
        tags = []
    headers = (metadata.get("requester_metadata") or {}).get("headers") or {}
    user_agent = _str(
        row.get("user_agent")
        or metadata.get("user_agent")
        or (headers.get("user-agent") if isinstance(headers, dict) else None),
        300,
    )
    start = parse_time(row.get("startTime"), "startTime")
    end = _optional_time(row.get("endTime"))
    first_token = _optional_time(row.get("completionStartTime"))
    status = str(row.get("status") or "success")
    cached, creation = _cache_tokens(usage, {})
    prompt = row.get("prompt_tokens")
    completion = row.get("completion_tokens")
    error_info = row.get("error_information") or {}
    if not isinstance(error_info, dict):
        error_info = {}
    hidden = row.get("hidden_params") or {}
    model_group = row.get("model_group") or (hidden.get("additional_headers") or {}).get("x-litellm-model-group")
    return NormalizedRow(
        request_id=_canonical_id(request_id, row.get("cache_hit"), row.get("litellm_call_id")),
        time=start,
        token_hash=_token_hash(metadata.get("user_api_key_hash")),
        key_alias=_str(metadata.get("user_api_key_alias"), 200),
        model=_str(row.get("model"), 200),
        model_group=_str(model_group, 200),
        provider=_str(row.get("custom_llm_provider"), 60),
        prompt_tokens=_tokens(usage.get("prompt_tokens") if prompt is None else prompt, "prompt_tokens"),
        completion_tokens=_tokens(
            usage.get("completion_tokens") if completion is None else completion, "completion_tokens"
        ),
        cached_tokens=_tokens(cached, "cached_tokens"),
        cache_creation_tokens=_tokens(creation, "cache_creation_tokens"),
        status=status[:10],
        error_type=error_type(status, error_info),
        latency_ms=_ms(start, end),
        ttft_ms=_ms(start, first_token),
        client_tool=client_tool(user_agent, tags),
        user_agent=user_agent,
        request_tags=tags,
        spend_logs_metadata=metadata.get("spend_logs_metadata"),
        gateway_spend=_money(row.get("response_cost"), "response_cost"),
        **_pricing_inputs(row, metadata, usage),
    )
