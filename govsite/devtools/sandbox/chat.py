"""POST /chat/completions: who is calling, LiteLLM's refusals in its order, litellm's mock answers and
cost, and the spend row (and key, team and user spend) each call leaves."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from govsite.devtools.sandbox.keys import key_row, reset_due_budgets, save_key
from govsite.devtools.sandbox.spend_logs import make_spend_row
from govsite.devtools.sandbox.store import (
    ALL_MODELS_SENTINELS,
    DEFAULT_MOCK_TEXT,
    MASTER_KEY_API_KEY,
    MASTER_KEY_USER_ID,
    MODEL_ACCESS_DENIED,
    MODEL_MAP,
    Transaction,
    abbreviate,
    hash_if_needed,
    hash_token,
    iso,
    load_litellm,
    parse_iso,
    utcnow,
)
from govsite.devtools.sandbox.teams import team_row
from govsite.devtools.sandbox.validation import ApiError, Request, proxy_error

# --- chat completions


@dataclass
class Caller:
    """Who is calling an LLM route: a virtual key's record, or the master key (record None)."""

    api_key: str
    secret: str
    record: dict[str, Any] | None

    @property
    def user_id(self) -> str:
        return MASTER_KEY_USER_ID if self.record is None else (self.record.get("user_id") or "")

    @property
    def team_id(self) -> str:
        return "" if self.record is None else (self.record.get("team_id") or "")

    @property
    def alias(self) -> str | None:
        return None if self.record is None else self.record.get("key_alias")


def bearer(headers: Any) -> str | None:
    value = headers.get("Authorization") or ""
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return headers.get("x-litellm-api-key") or None


def auth_error(message: str, param: str = "None") -> ApiError:
    return proxy_error(401, f"Authentication Error, {message}", "auth_error", param)


def unknown_key(secret: str) -> ApiError:
    return proxy_error(
        401,
        f"Authentication Error, Invalid proxy server token passed. Received API Key = {abbreviate(secret)}, "
        f"Key Hash (Token) ={hash_token(secret)}. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
        "token_not_found_in_db",
        "key",
    )


@dataclass
class CallContext:
    """Everything a spend-log row needs to know about the incoming call."""

    caller: Caller
    model_group: str
    user_agent: str
    client_ip: str
    tags: list[str]
    spend_logs_metadata: dict | None
    session_id: str | None
    started: datetime

    def row(self, **fields: Any) -> dict[str, Any]:
        return make_spend_row(
            start_time=self.started,
            api_key=self.caller.api_key,
            model_group=self.model_group,
            user=self.caller.user_id,
            team_id=self.caller.team_id,
            key_alias=self.caller.alias,
            user_agent=self.user_agent,
            tags=self.tags,
            spend_logs_metadata=self.spend_logs_metadata,
            session_id=self.session_id,
            requester_ip_address=self.client_ip,
            **fields,
        )


def _request_metadata(body: dict[str, Any]) -> dict[str, Any]:
    for name in ("litellm_metadata", "metadata"):
        if isinstance(body.get(name), dict):
            return body[name]
    return {}


def _refusal(ctx: CallContext, req: Request, error: ApiError, error_class: str, **extra: Any) -> ApiError:
    """Record a failure row for a refused call of a known key (LiteLLM's failure hook does), then refuse."""
    message = error.payload["error"]["message"]
    information = {
        "error_budget_entity_id": None,
        "error_budget_entity_type": None,
        "error_budget_limit": None,
        "error_budget_spend": None,
        "error_class": error_class,
        "error_code": str(error.status),
        "error_message": message,
        "error_provider_request_id": None,
        "error_rate_limit_category": None,
        "error_rate_limit_type": None,
        "llm_provider": "",
        "normalized_error": error.payload["error"]["type"],
        "traceback": "",
        **extra,
    }
    row = ctx.row(
        status="failure",
        spend=0.0,
        prompt_tokens=0,
        completion_tokens=0,
        error_information=information,
        end_time=utcnow(),
    )
    insert_rows(req, [row])
    return error


def insert_rows(req: Request, rows: list[dict[str, Any]], spend: float = 0.0, caller: Caller | None = None) -> None:
    """Queue spend rows for the batch writer and add `spend` to the key, team and user now (LiteLLM
    counts spend against budgets at once; its spend-log rows reach the table with the next batch)."""
    req.spend_log_writer.add(rows)
    if caller is None or caller.record is None:
        return
    conn = req.conn
    with Transaction(conn):
        record = key_row(conn, caller.api_key)
        if record is not None:
            record["spend"] = record["spend"] + spend
            record["last_active"] = iso(utcnow())
            save_key(conn, record)
        if caller.team_id:
            conn.execute("UPDATE teams SET spend = spend + ? WHERE team_id = ?", (spend, caller.team_id))
        if caller.user_id:
            conn.execute("UPDATE users SET spend = spend + ? WHERE user_id = ?", (spend, caller.user_id))


def _authenticate_llm_call(req: Request, master_key: str) -> Caller:
    secret = bearer(req.headers)
    if not secret:
        raise auth_error("No api key passed in.")
    if hmac.compare_digest(secret.encode(), master_key.encode()):
        return Caller(api_key=MASTER_KEY_API_KEY, secret=secret, record=None)
    record = key_row(req.conn, hash_if_needed(secret))
    if record is None:
        raise unknown_key(secret)
    return Caller(api_key=record["token"], secret=secret, record=record)


def _check_key(req: Request, ctx: CallContext) -> None:
    """LiteLLM's auth checks in its order: blocked, model access, expiry, budget."""
    record = ctx.caller.record
    if record is None:
        return
    if record.get("blocked") is True:
        error = auth_error("Key is blocked. Update via `/key/unblock` if you're an admin.")
        raise _refusal(ctx, req, error, "ProxyException")
    team = team_row(req.conn, ctx.caller.team_id) if ctx.caller.team_id else None
    for owner, models in (("key", record.get("models") or []), ("team", (team or {}).get("models") or [])):
        if models and not ALL_MODELS_SENTINELS & set(models) and ctx.model_group not in models:
            error = proxy_error(
                403, MODEL_ACCESS_DENIED.format(model=ctx.model_group), f"{owner}_model_access_denied", "model"
            )
            raise _refusal(ctx, req, error, "ProxyException")
    if record.get("expires"):
        expires = parse_iso(record["expires"])
        if expires < req.now:
            error = proxy_error(
                401,
                f"Authentication Error - Expired Key. Key Expiry time {expires} and current time {req.now}",
                "expired_key",
                abbreviate(ctx.caller.secret),
            )
            raise _refusal(ctx, req, error, "ProxyException")
    status = load_litellm().budget_exceeded_status_code
    max_budget = record.get("max_budget")
    if max_budget is not None and record["spend"] >= max_budget:
        label = f"{record.get('key_alias') or 'key'} ({record['key_name']})"
        error = proxy_error(
            status,
            f"Budget has been exceeded! Key={label} Current cost: {record['spend']}, Max budget: {max_budget}",
            "budget_exceeded",
        )
        raise _refusal(
            ctx,
            req,
            error,
            "BudgetExceededError",
            error_budget_entity_type="key",
            error_budget_entity_id=record["token"],
            error_budget_limit=max_budget,
            error_budget_spend=record["spend"],
            error_rate_limit_type="budget",
        )
    if team and team.get("max_budget") is not None and team["spend"] >= team["max_budget"]:
        error = proxy_error(
            status,
            f"Budget has been exceeded! Team={team['team_id']} "
            f"Current cost: {team['spend']}, Max budget: {team['max_budget']}",
            "budget_exceeded",
        )
        raise _refusal(
            ctx,
            req,
            error,
            "BudgetExceededError",
            error_budget_entity_type="team",
            error_budget_entity_id=team["team_id"],
            error_budget_limit=team["max_budget"],
            error_budget_spend=team["spend"],
            error_rate_limit_type="budget",
        )


def _check_rpm(req: Request, ctx: CallContext) -> None:
    """Admit the call into this minute's window or refuse it with 429, like LiteLLM's v3 limiter."""
    record = ctx.caller.record
    if record is None or record.get("rpm_limit") is None:
        return
    limit = int(record["rpm_limit"])
    minute = req.now.strftime("%Y-%m-%dT%H:%M")
    with Transaction(req.conn):
        req.conn.execute("DELETE FROM rate_counters WHERE minute < ?", (minute,))
        row = req.conn.execute(
            "SELECT count FROM rate_counters WHERE api_key = ? AND minute = ?", (ctx.caller.api_key, minute)
        ).fetchone()
        used = row["count"] if row else 0
        if used < limit:
            req.conn.execute(
                "INSERT INTO rate_counters (api_key, minute, count) VALUES (?, ?, 1) "
                "ON CONFLICT (api_key, minute) DO UPDATE SET count = count + 1",
                (ctx.caller.api_key, minute),
            )
            return
    resets = (req.now.replace(second=0, microsecond=0) + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
    error = proxy_error(
        429,
        f"Rate limit exceeded for api_key: {ctx.caller.api_key}. Limit type: requests. "
        f"Current limit: {limit}, Remaining: 0. Limit resets at: {resets}",
        "throttling_error",
        headers={"retry-after": "60", "rate_limit_type": "requests", "reset_at": resets},
    )
    raise _refusal(
        ctx,
        req,
        error,
        "RateLimitError",
        error_rate_limit_category="litellm_rate_limit",
        error_rate_limit_type="requests",
    )


def price(provider_model: str, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict | None:
    """litellm's cost for these tokens as a cost_breakdown, or None when the model is not in its price map."""
    litellm = load_litellm()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=provider_model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cache_read_input_tokens=cached_tokens,
        )
    except litellm.exceptions.ModelNotMappedError:
        return None
    return {
        "input_cost": prompt_cost,
        "output_cost": completion_cost,
        "total_cost": prompt_cost + completion_cost,
        "tool_usage_cost": 0.0,
        "original_cost": prompt_cost + completion_cost,
        "discount_percent": 0.0,
        "discount_amount": 0.0,
        "margin_percent": 0.0,
        "margin_fixed_amount": 0.0,
        "margin_total_amount": 0.0,
    }


def _cached_tokens(usage: dict[str, Any]) -> int:
    details = usage.get("prompt_tokens_details") or {}
    return int(details.get("cached_tokens") or 0)


class ChatCompletions:
    """The LLM route of the sandbox's request handler (mixed into `server.Handler`, whose `_send_json`,
    headers and socket it uses)."""

    def _chat(self, req: Request) -> None:
        caller = _authenticate_llm_call(req, self.server.master_key)
        body = req.body if isinstance(req.body, dict) else {}
        metadata = _request_metadata(body)
        ctx = CallContext(
            caller=caller,
            model_group=str(body.get("model") or ""),
            user_agent=self.headers.get("User-Agent") or "",
            client_ip=req.client_ip,
            tags=[str(tag) for tag in metadata.get("tags") or []],
            spend_logs_metadata=metadata.get("spend_logs_metadata"),
            session_id=body.get("litellm_session_id")
            or metadata.get("session_id")
            or self.headers.get("x-litellm-session-id"),
            started=req.now,
        )
        if caller.record is not None:
            reset_due_budgets(req.conn, req.now)
            caller.record = key_row(req.conn, caller.api_key)
        _check_key(req, ctx)
        _check_rpm(req, ctx)
        provider_model = MODEL_MAP.get(ctx.model_group)
        if provider_model is None:
            error = proxy_error(
                400,
                f"/chat/completions: Invalid model name passed in model={ctx.model_group}. "
                "Call `/v1/models` to view available models for your key.",
                "invalid_request_error",
            )
            raise _refusal(ctx, req, error, "ProxyModelNotFoundError")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise proxy_error(400, "messages is a required param", "invalid_request_error", "messages")
        mock_text = str(body.get("mock_response") or DEFAULT_MOCK_TEXT)
        cached = int(self.headers.get("x-sandbox-cached-tokens") or 0)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._chat_stream(req, ctx, provider_model, messages, mock_text, include_usage)
        else:
            self._chat_once(req, ctx, provider_model, messages, mock_text, cached)

    def _chat_once(self, req, ctx, provider_model, messages, mock_text, cached) -> None:
        litellm = load_litellm()
        response = litellm.completion(model=provider_model, messages=messages, mock_response=mock_text)
        usage = response.usage.model_dump()
        if cached:
            # Providers report prompt-cache reads in prompt_tokens_details; the mock never does.
            from litellm.types.utils import Usage  # litellm is imported late: it takes seconds

            prompt = max(usage["prompt_tokens"], cached)
            response.usage = Usage(
                prompt_tokens=prompt,
                completion_tokens=usage["completion_tokens"],
                total_tokens=prompt + usage["completion_tokens"],
                prompt_tokens_details={"cached_tokens": cached},
            )
            usage = response.usage.model_dump()
        breakdown = price(provider_model, usage["prompt_tokens"], usage["completion_tokens"], _cached_tokens(usage))
        spend = breakdown["total_cost"] if breakdown else 0.0
        row = ctx.row(
            request_id=response.id,
            model=provider_model,
            spend=spend,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            cached_tokens=_cached_tokens(usage) or None,
            cost_breakdown=breakdown,
            end_time=utcnow(),
        )
        insert_rows(req, [row], spend, ctx.caller)
        self._send_json(
            200,
            response.model_dump(mode="json"),
            {
                "x-litellm-call-id": row["litellm_call_id"],
                "x-litellm-response-cost": str(spend),
                "x-litellm-model-id": row["model_id"],
                "x-litellm-model-group": ctx.model_group,
            },
        )

    def _chat_stream(self, req, ctx, provider_model, messages, mock_text, include_usage) -> None:
        litellm = load_litellm()
        # Ask litellm for usage always, so the row has true tokens; pass it on only if the caller asked.
        stream = litellm.completion(
            model=provider_model,
            messages=messages,
            mock_response=mock_text,
            stream=True,
            stream_options={"include_usage": True},
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("x-litellm-model-group", ctx.model_group)
        self.end_headers()
        self.close_connection = True
        usage: dict[str, Any] | None = None
        request_id = None
        first_chunk_at = None
        for chunk in stream:
            first_chunk_at = first_chunk_at or utcnow()
            request_id = request_id or chunk.id
            chunk_usage = getattr(chunk, "usage", None)
            if chunk_usage is not None:
                usage = chunk_usage.model_dump()
                if not include_usage:
                    continue
            self.wfile.write(f"data: {chunk.model_dump_json(exclude_none=True)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        usage = usage or {"prompt_tokens": 0, "completion_tokens": 0}
        # LiteLLM prices a streamed call like any other, whether or not the caller asked for usage: it
        # rebuilds the whole response from the chunks (stream_chunk_builder) with the provider's usage,
        # or tokens it counts itself when the provider sent none, and logs that response's cost.
        breakdown = price(provider_model, usage["prompt_tokens"], usage["completion_tokens"], _cached_tokens(usage))
        spend = breakdown["total_cost"] if breakdown else 0.0
        row = ctx.row(
            request_id=request_id,
            model=provider_model,
            spend=spend,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            cost_breakdown=breakdown,
            completion_start_time=first_chunk_at,
            end_time=utcnow(),
            stream=True,
        )
        insert_rows(req, [row], spend, ctx.caller)
