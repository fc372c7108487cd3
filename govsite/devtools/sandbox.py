"""A stand-in LiteLLM proxy for the demo and the tests, run as its own process.

    python -m govsite.devtools.sandbox --port 4000 --db var/sandbox.sqlite3 --master-key sk-...
    python manage.py sandbox_gateway --port 4000

What it emulates (shapes read from litellm 1.106.2's proxy source and real captured payloads):

- The admin API subset govsite uses, with the same paths, JSON and error shapes: POST /key/generate,
  /key/update, /key/delete, /key/block, /key/unblock; GET /key/info, /key/list; POST /team/new,
  /team/update; GET /team/info; POST /user/new; GET /spend/logs/v2; GET /health/liveliness.
  Admin calls need `Authorization: Bearer <master key>`. Bodies are validated with litellm's own
  pydantic request models (a failure answers 422 `{"detail": [...]}`; unknown fields are dropped,
  as LiteLLM does). Management errors are `{"error": {"message", "type", "param", "code"}}`.
- Virtual keys: secrets "sk-" + urlsafe random (or the caller's `key`), stored only as sha256 hex,
  globally unique `key_alias`, `duration` -> `expires`, `budget_duration` -> spend reset at
  `budget_reset_at` (litellm's own standardized reset times), block/unblock, delete (deleted keys
  stay readable through /key/info with status "deleted", and their alias becomes free).
- POST /chat/completions and /v1/chat/completions for virtual keys and the master key, refusing in
  LiteLLM's order: unknown key 401, blocked 401, model not allowed 403, expired 401, over budget
  422 `budget_exceeded` (litellm.budget_exceeded_status_code), rpm_limit 429. Answers come from
  litellm's mock path (`mock_response`), streamed as real SSE when `stream` is true; cost from
  litellm's price map (`cost_per_token`).
- One LiteLLM_SpendLogs-shaped row per call, success or refusal of a known key (`make_spend_row`).
  Streamed calls without `stream_options.include_usage` log the right tokens but spend 0.0, which is
  the under-count real providers cause and the ledger must repair.

What it does not emulate: organisations, projects, team members and their budgets, user budgets,
tpm/parallel-request limits, guardrails, caching, routing/fallbacks, Enterprise features (key `tags`
answer LiteLLM's licence error), the ~10 s batching delay before spend rows appear (rows are written
at once), and the UI routes. Everything lives in one SQLite file (WAL); the process keeps no state
but the test-only fault switch (POST /sandbox/faults).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger("govsite.devtools.sandbox")

# Model group (what callers ask for) -> litellm provider model. The last one is deliberately absent
# from litellm's price map so "unpriced" handling can be exercised.
MODEL_MAP = {
    "gpt-4o": "openai/gpt-4o",
    "gpt-4o-mini": "openai/gpt-4o-mini",
    "claude-sonnet-4-5": "anthropic/claude-sonnet-4-5",
    "claude-haiku-4-5": "anthropic/claude-haiku-4-5",
    "kimi-k2.5": "moonshot/kimi-k2.5",
    "acme-internal-llm": "openai/acme-internal-llm",
}
DEFAULT_MOCK_TEXT = "This is a mock response from the govsite sandbox gateway."
MASTER_KEY_API_KEY = "litellm_proxy_master_key"  # what LiteLLM logs as api_key for master-key calls
MASTER_KEY_USER_ID = "default_user_id"
SPEND_LOGS_COUNT_CAP = 10_000
SPEND_LOGS_MAX_PAGE_SIZE = 1000
KEY_LIST_MAX_SIZE = 100
MIN_CUSTOM_KEY_LENGTH = 16
SPEND_LOG_SORT_FIELDS = ("spend", "total_tokens", "startTime", "endTime", "request_duration_ms", "model")
NOT_PREMIUM = (
    "You must be a LiteLLM Enterprise user to use this feature. If you have a license please set "
    "`LITELLM_LICENSE` in your env. Get a 7 day trial key here: https://www.litellm.ai/enterprise#trial. "
    "\nPricing: https://www.litellm.ai/#pricing"
)
MODEL_ACCESS_DENIED = (
    "The requested model '{model}' is not available for this API key, or the model name is invalid. "
    "Check the models available to you and try again."
)
ALL_MODELS_SENTINELS = {"*", "all-proxy-models", "all-team-models"}

# Exactly the columns of a LiteLLM_SpendLogs row as /spend/logs/v2 returns it (see the samples).
SPEND_LOG_COLUMNS = (
    "agent_id",
    "api_base",
    "api_key",
    "billing_agent_id",
    "cache_hit",
    "cache_key",
    "call_type",
    "completionStartTime",
    "completion_tokens",
    "custom_llm_provider",
    "endTime",
    "end_user",
    "litellm_call_id",
    "mcp_namespaced_tool_name",
    "messages",
    "metadata",
    "model",
    "model_group",
    "model_id",
    "organization_id",
    "prompt_tokens",
    "proxy_server_request",
    "request_duration_ms",
    "request_id",
    "request_tags",
    "requester_ip_address",
    "response",
    "session_id",
    "spend",
    "startTime",
    "status",
    "team_id",
    "total_tokens",
    "user",
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS keys (
    token TEXT PRIMARY KEY,
    key_alias TEXT UNIQUE,
    user_id TEXT,
    team_id TEXT,
    spend REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deleted_keys (
    token TEXT PRIMARY KEY,
    key_alias TEXT,
    spend REAL NOT NULL DEFAULT 0,
    deleted_at TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS teams (
    team_id TEXT PRIMARY KEY,
    spend REAL NOT NULL DEFAULT 0,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    user_email TEXT,
    spend REAL NOT NULL DEFAULT 0,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_counters (
    api_key TEXT NOT NULL,
    minute TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (api_key, minute)
);
CREATE TABLE IF NOT EXISTS spend_logs (
    {", ".join(f'"{column}"' + (" TEXT PRIMARY KEY" if column == "request_id" else "") for column in SPEND_LOG_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS spend_logs_start ON spend_logs ("startTime");
CREATE INDEX IF NOT EXISTS spend_logs_api_key ON spend_logs (api_key, "startTime");
"""


# --- litellm (imported late: it takes seconds, and this module is imported by test helpers too)


@functools.cache
def _litellm():
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def _request_models():
    from litellm.proxy import _types

    return _types


# --- time


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """One fixed ISO format (microseconds, +00:00) so stored times also sort and compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_iso(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def duration_seconds(duration: str) -> int:
    from litellm.litellm_core_utils.duration_parser import duration_in_seconds

    return duration_in_seconds(duration)


def next_budget_reset(duration: str, now: datetime) -> str:
    from litellm.litellm_core_utils.duration_parser import get_next_standardized_reset_time

    return iso(get_next_standardized_reset_time(duration, now))


# --- storage


def connect(db_path: str | Path) -> sqlite3.Connection:
    """A connection in autocommit mode; writers open `BEGIN IMMEDIATE` themselves."""
    conn = sqlite3.connect(str(db_path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def init_db(db_path: str | Path) -> None:
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    conn = connect(db_path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
    finally:
        conn.close()


class _Transaction:
    """`with _Transaction(conn):` — BEGIN IMMEDIATE, so concurrent writers queue instead of deadlocking."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_if_needed(token: str) -> str:
    return hash_token(token) if token.startswith("sk-") else token


def abbreviate(secret: str) -> str:
    return f"sk-...{secret[-4:]}" if len(secret) >= MIN_CUSTOM_KEY_LENGTH else "sk-..."


# --- spend log rows


def make_spend_row(
    *,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    completion_start_time: datetime | None = None,
    request_id: str | None = None,
    api_key: str = MASTER_KEY_API_KEY,
    model_group: str = "gpt-4o",
    model: str | None = None,
    custom_llm_provider: str | None = None,
    spend: float = 0.0,
    prompt_tokens: int = 10,
    completion_tokens: int = 20,
    cached_tokens: int | None = None,
    user: str = "",
    team_id: str = "",
    key_alias: str | None = None,
    status: str = "success",
    user_agent: str = "python-httpx/0.28.1",
    tags: Iterable[str] = (),
    spend_logs_metadata: dict | None = None,
    error_information: dict | None = None,
    cost_breakdown: dict | None = None,
    session_id: str | None = None,
    requester_ip_address: str = "127.0.0.1",
    stream: bool = False,
) -> dict[str, Any]:
    """A spend-log row in exactly LiteLLM's `LiteLLM_SpendLogs` shape (metadata and tags as JSON text)."""
    start_time = start_time or utcnow()
    end_time = end_time or start_time + timedelta(milliseconds=10)
    completion_start_time = completion_start_time or end_time
    provider_model = model or MODEL_MAP.get(model_group, model_group)
    provider = custom_llm_provider or (provider_model.split("/", 1)[0] if "/" in provider_model else "openai")
    call_id = str(uuid.uuid4())
    usage: dict[str, Any] = {
        "completion_tokens": completion_tokens,
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens_details": None,
        "prompt_tokens_details": None if cached_tokens is None else {"cached_tokens": cached_tokens},
    }
    metadata = {
        "actor_agent_id": None,
        "target_agent_id": None,
        "billing_agent_id": None,
        "agent_execution_mode": None,
        "verified_human_user_id": None,
        "additional_usage_values": {
            "completion_tokens_details": None,
            "prompt_tokens_details": usage["prompt_tokens_details"],
        },
        "user_api_key": api_key,
        "user_api_key_alias": key_alias,
        "user_api_key_team_id": team_id or None,
        "user_api_key_project_id": None,
        "user_api_key_project_alias": None,
        "user_api_key_org_id": None,
        "user_api_key_user_id": user or None,
        "user_api_key_team_alias": None,
        "spend_logs_metadata": spend_logs_metadata,
        "requester_ip_address": requester_ip_address,
        "user_agent": user_agent,
        "litellm_call_id": call_id,
        "applied_guardrails": [],
        "mcp_tool_call_metadata": None,
        "vector_store_request_metadata": None,
        "routing_decision": None,
        "internal_call_origin": None,
        "guardrail_information": None,
        "eval_information": None,
        "status": "failure" if status == "failure" else None,
        "proxy_server_request": None,
        "batch_models": None,
        "batch_successful_requests": None,
        "batch_failed_requests": None,
        "error_information": error_information,
        "usage_object": usage,
        "cold_storage_object_key": None,
        "litellm_overhead_time_ms": None,
        "attempted_retries": 0,
        "max_retries": 0,
        "attempted_fallbacks": 0,
        "original_model_group": model_group,
        "cost_breakdown": cost_breakdown,
        "compression_savings": None,
        "litellm_gateway_injected_cache": None,
        "autorouter_savings": None,
        "autorouter_savings_estimate": None,
        "autorouter_baseline_observation": None,
        "router_metadata": None,
        "azure_spillover": None,
        "used_client_oauth_token": False,
        "litellm_roi_estimator": False,
    }
    request_tags = list(tags)
    if user_agent:
        request_tags += [f"User-Agent: {user_agent.split('/', 1)[0]}", f"User-Agent: {user_agent}"]
    return {
        "agent_id": None,
        "api_base": "",
        "api_key": api_key,
        "billing_agent_id": None,
        "cache_hit": "False" if stream else "None",
        "cache_key": "Cache OFF",
        "call_type": "acompletion",
        "completionStartTime": iso(completion_start_time),
        "completion_tokens": completion_tokens,
        "custom_llm_provider": provider,
        "endTime": iso(end_time),
        "end_user": "",
        "litellm_call_id": call_id,
        "mcp_namespaced_tool_name": None,
        "messages": "{}",
        "metadata": json.dumps(metadata),
        "model": provider_model,
        "model_group": model_group,
        "model_id": hashlib.sha256(provider_model.encode()).hexdigest(),
        "organization_id": "",
        "prompt_tokens": prompt_tokens,
        "proxy_server_request": "{}",
        "request_duration_ms": max(0, int((end_time - start_time).total_seconds() * 1000)),
        "request_id": request_id or (f"chatcmpl-{uuid.uuid4()}" if status == "success" else call_id),
        "request_tags": json.dumps(request_tags),
        "requester_ip_address": requester_ip_address,
        "response": "{}",
        "session_id": session_id or str(uuid.uuid4()),
        "spend": float(spend),
        "startTime": iso(start_time),
        "status": status,
        "team_id": team_id,
        "total_tokens": prompt_tokens + completion_tokens,
        "user": user,
    }


def _normalize_row(row: dict[str, Any]) -> tuple:
    values = []
    for column in SPEND_LOG_COLUMNS:
        value = row.get(column)
        if column in ("startTime", "endTime", "completionStartTime") and value is not None:
            value = iso(value if isinstance(value, datetime) else parse_iso(value))
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        values.append(value)
    return tuple(values)


_QUOTED_COLUMNS = ", ".join(f'"{column}"' for column in SPEND_LOG_COLUMNS)
_PLACEHOLDERS = ", ".join("?" for _ in SPEND_LOG_COLUMNS)
_INSERT_SPEND_ROW = f"INSERT INTO spend_logs ({_QUOTED_COLUMNS}) VALUES ({_PLACEHOLDERS})"  # noqa: S608 - constant columns


def insert_spend_rows(db_path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Bulk-insert spend-log rows (e.g. from `make_spend_row`) straight into a sandbox database."""
    init_db(db_path)
    conn = connect(db_path)
    try:
        with _Transaction(conn):
            cursor = conn.executemany(_INSERT_SPEND_ROW, (_normalize_row(row) for row in rows))
        return cursor.rowcount
    finally:
        conn.close()


# --- errors in LiteLLM's shapes


class ApiError(Exception):
    """An HTTP answer other than 200, carrying LiteLLM's JSON body for it."""

    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload
        self.headers = headers or {}


def proxy_error(status: int, message: str, type_: str, param: str | None = None, **kwargs: Any) -> ApiError:
    """LiteLLM's ProxyException: `{"error": {"message", "type", "param", "code": "<status>"}}`."""
    return ApiError(
        status, {"error": {"message": message, "type": type_, "param": param, "code": str(status)}}, **kwargs
    )


def detail_error(status: int, detail: Any, type_: str = "internal_server_error") -> ApiError:
    """An HTTPException re-raised by `handle_exception_on_proxy`: the detail arrives as its Python repr."""
    return proxy_error(status, detail if isinstance(detail, str) else repr(detail), type_)


def validation_error(errors: list[dict[str, Any]]) -> ApiError:
    """FastAPI's 422 for a request that fails pydantic validation."""
    return ApiError(422, {"detail": json.loads(json.dumps(errors, default=str))})


def query_error(name: str, error_type: str, msg: str, value: Any, ctx: dict | None = None) -> ApiError:
    item = {"type": error_type, "loc": ["query", name], "msg": msg, "input": value}
    if ctx:
        item["ctx"] = ctx
    return validation_error([item])


# --- request context


@dataclass
class Request:
    """What a route handler needs: one connection for this request, the parsed input, the time."""

    conn: sqlite3.Connection
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: Any
    client_ip: str
    now: datetime = field(default_factory=utcnow)

    def validated(self, model_name: str) -> dict[str, Any]:
        """The body through litellm's request model: set fields only, unknown ones dropped like LiteLLM."""
        import pydantic

        if not isinstance(self.body, dict):
            raise validation_error(
                [
                    {
                        "type": "model_attributes_type",
                        "loc": ["body"],
                        "msg": "Input should be a valid dictionary",
                        "input": self.body,
                    }
                ]
            )
        model = getattr(_request_models(), model_name)
        try:
            parsed = model.model_validate(self.body)
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_url=False)
            for error in errors:
                error["loc"] = ["body", *error.get("loc", ())]
            raise validation_error(errors) from exc
        return parsed.model_dump(mode="json", exclude_unset=True)

    def int_param(self, name: str, default: int, *, ge: int = 1, le: int | None = None) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise query_error(
                name, "int_parsing", "Input should be a valid integer, unable to parse string as an integer", raw
            ) from exc
        if value < ge:
            raise query_error(
                name, "greater_than_equal", f"Input should be greater than or equal to {ge}", raw, {"ge": ge}
            )
        if le is not None and value > le:
            raise query_error(name, "less_than_equal", f"Input should be less than or equal to {le}", raw, {"le": le})
        return value


# --- keys


def _key_row(conn: sqlite3.Connection, token: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT record, spend FROM keys WHERE token = ?", (token,)).fetchone()
    if row is None:
        return None
    return {**json.loads(row["record"]), "spend": row["spend"]}


def _save_key(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE keys SET key_alias = ?, user_id = ?, team_id = ?, spend = ?, record = ? WHERE token = ?",
        (
            record.get("key_alias"),
            record.get("user_id"),
            record.get("team_id"),
            record.get("spend") or 0.0,
            json.dumps(record),
            record["token"],
        ),
    )


def _key_status(record: dict[str, Any], now: datetime) -> str:
    if record.get("deleted_at"):
        return "deleted"
    if record.get("blocked") is True:
        return "revoked"
    if record.get("expires") and parse_iso(record["expires"]) < now:
        return "expired"
    return "active"


def _alias_taken(conn: sqlite3.Connection, alias: str | None, except_token: str | None = None) -> bool:
    if alias is None:
        return False
    row = conn.execute("SELECT token FROM keys WHERE key_alias = ?", (alias,)).fetchone()
    return row is not None and row["token"] != except_token


def _alias_conflict(alias: str) -> ApiError:
    return proxy_error(
        400,
        f"Key with alias '{alias}' already exists. Unique key aliases across all keys are required.",
        "bad_request_error",
        "key_alias",
    )


def _refuse_tags(fields: dict[str, Any]) -> None:
    # LiteLLM raises a ValueError here, which its handler turns into a 500.
    if fields.get("tags") is not None:
        raise proxy_error(500, f"Only premium users can add tags to keys. {NOT_PREMIUM}", "internal_server_error")


def _apply_durations(record: dict[str, Any], fields: dict[str, Any], now: datetime) -> None:
    try:
        if "duration" in fields:
            duration = fields["duration"]
            record["expires"] = None if duration is None else iso(now + timedelta(seconds=duration_seconds(duration)))
        if "budget_duration" in fields:
            duration = fields["budget_duration"]
            record["budget_duration"] = duration
            record["budget_reset_at"] = None if duration is None else next_budget_reset(duration, now)
    except ValueError as exc:
        raise proxy_error(500, str(exc), "internal_server_error") from exc


def _ensure_user(conn: sqlite3.Connection, user_id: str | None, now: datetime) -> None:
    """LiteLLM creates the user row when a key names a user it has not seen."""
    if user_id:
        record = {
            "user_id": user_id,
            "user_email": None,
            "user_role": "internal_user",
            "teams": [],
            "max_budget": None,
            "metadata": {},
            "created_at": iso(now),
        }
        conn.execute(
            "INSERT OR IGNORE INTO users (user_id, user_email, record) VALUES (?, NULL, ?)",
            (user_id, json.dumps(record)),
        )


def _create_key(conn: sqlite3.Connection, fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    _refuse_tags(fields)
    secret = fields.get("key")
    if secret is not None:
        if not secret.startswith("sk-"):
            masked = f"{secret[:4]}****{secret[-4:]}" if len(secret) > 8 else "****"
            raise detail_error(
                400, {"error": f"Invalid key format. LiteLLM Virtual Key must start with 'sk-'. Received: {masked}"}
            )
        if len(secret) < MIN_CUSTOM_KEY_LENGTH:
            raise detail_error(
                400,
                {
                    "error": "Invalid key format. LiteLLM Virtual Key must be at least "
                    f"{MIN_CUSTOM_KEY_LENGTH} characters long."
                },
            )
    else:
        secret = f"sk-{secrets.token_urlsafe(16)}"
    token = hash_token(secret)
    record: dict[str, Any] = {
        "token": token,
        "key_name": abbreviate(secret),
        "key_alias": None,
        "spend": 0.0,
        "max_budget": None,
        "soft_budget": None,
        "expires": None,
        "models": [],
        "aliases": {},
        "config": {},
        "user_id": None,
        "team_id": None,
        "permissions": {},
        "max_parallel_requests": None,
        "metadata": {},
        "blocked": None,
        "tpm_limit": None,
        "rpm_limit": None,
        "budget_duration": None,
        "budget_reset_at": None,
        "allowed_cache_controls": [],
        "model_spend": {},
        "model_max_budget": {},
        "organization_id": None,
        "created_at": iso(now),
        "updated_at": iso(now),
        "last_active": None,
        "created_by": MASTER_KEY_USER_ID,
        "updated_by": MASTER_KEY_USER_ID,
    }
    record.update({k: v for k, v in fields.items() if k not in ("key", "duration", "budget_duration", "spend")})
    record["spend"] = float(fields.get("spend") or 0.0)
    _apply_durations(record, fields, now)
    if _alias_taken(conn, record["key_alias"]):
        raise _alias_conflict(record["key_alias"])
    _ensure_user(conn, record["user_id"], now)
    try:
        conn.execute(
            "INSERT INTO keys (token, key_alias, user_id, team_id, spend, created_at, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                token,
                record["key_alias"],
                record["user_id"],
                record["team_id"],
                record["spend"],
                record["created_at"],
                json.dumps(record),
            ),
        )
    except sqlite3.IntegrityError as exc:
        if "key_alias" in str(exc):
            raise _alias_conflict(record["key_alias"]) from exc
        raise detail_error(400, {"error": "Unique constraint failed on the fields: (`token`)"}) from exc
    return {**record, "key": secret, "token_id": token}


def key_generate(req: Request) -> dict:
    fields = req.validated("GenerateKeyRequest")
    with _Transaction(req.conn):
        return _create_key(req.conn, fields, req.now)


def _find_key_for_update(conn: sqlite3.Connection, fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("key") is not None:
        record = _key_row(conn, hash_if_needed(fields["key"]))
        if record is None:
            raise proxy_error(404, "Key not found.", "not_found_error", "key")
        return record
    alias = fields["key_alias"]
    rows = conn.execute("SELECT token FROM keys WHERE key_alias = ?", (alias,)).fetchall()
    if not rows:
        raise proxy_error(404, f"Key not found. No key with key_alias='{alias}'.", "not_found_error", "key_alias")
    return _key_row(conn, rows[0]["token"])


def key_update(req: Request) -> dict:
    fields = req.validated("UpdateKeyRequest")
    _refuse_tags(fields)
    with _Transaction(req.conn):
        record = _find_key_for_update(req.conn, fields)
        # key_alias is the identifier when no key is given, otherwise the new alias.
        changes = {k: v for k, v in fields.items() if k not in ("key", "duration", "budget_duration")}
        if fields.get("key") is None:
            changes.pop("key_alias", None)
        if "key_alias" in changes and _alias_taken(req.conn, changes["key_alias"], record["token"]):
            raise _alias_conflict(changes["key_alias"])
        record.update(changes)  # a merge patch; metadata is one field, so it is replaced wholesale
        _apply_durations(record, fields, req.now)
        record["updated_at"] = iso(req.now)
        _save_key(req.conn, record)
    identifier = fields.get("key") or fields.get("key_alias")
    shown = {
        k: record[k]
        for k in (
            *changes,
            *(("expires",) if "duration" in fields else ()),
            *(("budget_duration", "budget_reset_at") if "budget_duration" in fields else ()),
        )
    }
    return {"key": identifier, **shown}


def key_delete(req: Request) -> dict:
    fields = req.validated("KeyRequest")
    deleted = []
    with _Transaction(req.conn):
        targets: list[tuple[str, str]] = []  # (what the caller passed, token)
        for key in fields.get("keys") or []:
            if req.conn.execute("SELECT 1 FROM keys WHERE token = ?", (hash_if_needed(key),)).fetchone():
                targets.append((key, hash_if_needed(key)))
        for alias in fields.get("key_aliases") or []:
            for row in req.conn.execute("SELECT token FROM keys WHERE key_alias = ?", (alias,)).fetchall():
                targets.append((alias, row["token"]))
        if not targets:
            raise detail_error(404, {"error": "No keys found"})
        for passed, token in targets:
            record = _key_row(req.conn, token)
            record["deleted_at"] = iso(req.now)
            req.conn.execute(
                "INSERT OR REPLACE INTO deleted_keys (token, key_alias, spend, deleted_at, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (token, record.get("key_alias"), record["spend"], record["deleted_at"], json.dumps(record)),
            )
            req.conn.execute("DELETE FROM keys WHERE token = ?", (token,))
            if passed not in deleted:
                deleted.append(passed)
    return {"deleted_keys": deleted}


def _set_blocked(req: Request, blocked: bool) -> dict:
    fields = req.validated("BlockKeyRequest")
    with _Transaction(req.conn):
        record = _key_row(req.conn, hash_if_needed(fields["key"]))
        if record is None:
            raise proxy_error(404, "Key not found.", "not_found_error", "key")
        record["blocked"] = blocked
        record["updated_at"] = iso(req.now)
        _save_key(req.conn, record)
    return record


def key_block(req: Request) -> dict:
    return _set_blocked(req, True)


def key_unblock(req: Request) -> dict:
    return _set_blocked(req, False)


def reset_due_budgets(conn: sqlite3.Connection, now: datetime) -> None:
    """Zero the spend of keys and teams whose budget period ended (LiteLLM does this on a timer)."""
    with _Transaction(conn):
        for table, id_column in (("keys", "token"), ("teams", "team_id")):
            due = conn.execute(
                f"SELECT {id_column} AS id, record FROM {table} "  # noqa: S608 - table names are constants
                "WHERE json_extract(record, '$.budget_reset_at') <= ?",
                (iso(now),),
            ).fetchall()
            for row in due:
                record = json.loads(row["record"])
                record["budget_reset_at"] = next_budget_reset(record["budget_duration"], now)
                conn.execute(
                    f"UPDATE {table} SET spend = 0, record = ? WHERE {id_column} = ?",  # noqa: S608
                    (json.dumps(record), row["id"]),
                )


def key_info(req: Request) -> dict:
    key = req.query.get("key")
    if not key:
        raise proxy_error(404, "Key not found in database", "not_found_error", "key")
    reset_due_budgets(req.conn, req.now)
    token = hash_if_needed(key)
    record = _key_row(req.conn, token)
    if record is None:
        row = req.conn.execute("SELECT record, spend FROM deleted_keys WHERE token = ?", (token,)).fetchone()
        if row is None:
            raise proxy_error(404, "Key not found in database", "not_found_error", "key")
        record = {**json.loads(row["record"]), "spend": row["spend"]}
    info = {k: v for k, v in record.items() if k != "token"}
    info["status"] = _key_status(record, req.now)
    return {"key": key, "info": info}


def key_list(req: Request) -> dict:
    page = req.int_param("page", 1)
    size = req.int_param("size", 10, le=KEY_LIST_MAX_SIZE)
    reset_due_budgets(req.conn, req.now)
    where, params = [], []
    for name, column in (
        ("user_id", "user_id"),
        ("team_id", "team_id"),
        ("key_alias", "key_alias"),
        ("key_hash", "token"),
    ):
        if req.query.get(name):
            where.append(f"{column} = ?")
            params.append(req.query[name])
    rows = req.conn.execute(
        f"SELECT record, spend FROM keys {'WHERE ' + ' AND '.join(where) if where else ''} "  # noqa: S608
        "ORDER BY created_at DESC, token",
        params,
    ).fetchall()
    records = [{**json.loads(row["record"]), "spend": row["spend"]} for row in rows]
    status = req.query.get("status")
    if status:
        if status not in ("active", "expired", "revoked", "deleted"):
            raise detail_error(
                400, {"error": "Invalid status value. Supported: 'active', 'expired', 'revoked', 'deleted'."}
            )
        records = [r for r in records if _key_status(r, req.now) == status]
    total = len(records)
    window = records[(page - 1) * size : page * size]
    full = req.query.get("return_full_object", "false").lower() == "true"
    return {
        "keys": window if full else [r["token"] for r in window],
        "total_count": total,
        "current_page": page,
        "total_pages": -(-total // size) if total else 0,
    }


# --- teams and users


def _team_row(conn: sqlite3.Connection, team_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT record, spend FROM teams WHERE team_id = ?", (team_id,)).fetchone()
    return None if row is None else {**json.loads(row["record"]), "spend": row["spend"]}


def team_new(req: Request) -> dict:
    fields = req.validated("NewTeamRequest")
    team_id = fields.get("team_id") or str(uuid.uuid4())
    record: dict[str, Any] = {
        "team_id": team_id,
        "team_alias": None,
        "organization_id": None,
        "admins": [],
        "members": [],
        "members_with_roles": [],
        "metadata": {},
        "tpm_limit": None,
        "rpm_limit": None,
        "max_budget": None,
        "soft_budget": None,
        "budget_duration": None,
        "budget_reset_at": None,
        "models": [],
        "blocked": False,
        "spend": 0.0,
        "model_spend": {},
        "created_at": iso(req.now),
        "updated_at": iso(req.now),
    }
    record.update({k: v for k, v in fields.items() if k != "budget_duration"})
    record["team_id"] = team_id
    _apply_durations(record, fields, req.now)
    with _Transaction(req.conn):
        if _team_row(req.conn, team_id) is not None:
            raise detail_error(400, {"error": f"Team id = {team_id} already exists. Please use a different team id."})
        req.conn.execute("INSERT INTO teams (team_id, spend, record) VALUES (?, 0, ?)", (team_id, json.dumps(record)))
    return record


def team_update(req: Request) -> dict:
    fields = req.validated("UpdateTeamRequest")
    with _Transaction(req.conn):
        record = _team_row(req.conn, fields["team_id"])
        if record is None:
            raise detail_error(404, {"error": f"Team not found, passed team_id={fields['team_id']}"})
        record.update({k: v for k, v in fields.items() if k != "budget_duration"})
        _apply_durations(record, fields, req.now)
        record["updated_at"] = iso(req.now)
        req.conn.execute("UPDATE teams SET record = ? WHERE team_id = ?", (json.dumps(record), record["team_id"]))
    return {"team_id": record["team_id"], "data": record}


def team_info(req: Request) -> dict:
    team_id = req.query.get("team_id")
    if not team_id:
        raise proxy_error(422, repr({"message": "Malformed request. No team id passed in."}), "auth_error", "None")
    reset_due_budgets(req.conn, req.now)
    record = _team_row(req.conn, team_id)
    if record is None:
        raise proxy_error(404, repr({"message": f"Team not found, passed team id: {team_id}."}), "auth_error", "None")
    keys = [
        {**json.loads(row["record"]), "spend": row["spend"]}
        for row in req.conn.execute("SELECT record, spend FROM keys WHERE team_id = ? ORDER BY created_at", (team_id,))
    ]
    return {"team_id": team_id, "team_info": record, "keys": keys, "team_memberships": []}


def user_new(req: Request) -> dict:
    fields = req.validated("NewUserRequest")
    user_id = fields.get("user_id") or str(uuid.uuid4())
    with _Transaction(req.conn):
        if req.conn.execute("SELECT 1 FROM users WHERE user_id = ?", (user_id,)).fetchone():
            raise detail_error(409, {"error": f"User with user_id {user_id} already exists"})
        email = fields.get("user_email")
        if email and req.conn.execute("SELECT 1 FROM users WHERE lower(user_email) = lower(?)", (email,)).fetchone():
            raise detail_error(409, {"error": f"User with user_email {email} already exists"})
        record = {
            "user_id": user_id,
            "user_email": email,
            "user_alias": fields.get("user_alias"),
            "user_role": fields.get("user_role") or "internal_user",
            "teams": fields.get("teams") or [],
            "max_budget": fields.get("max_budget"),
            "metadata": fields.get("metadata") or {},
            "created_at": iso(req.now),
        }
        req.conn.execute(
            "INSERT INTO users (user_id, user_email, record) VALUES (?, ?, ?)", (user_id, email, json.dumps(record))
        )
        key = None
        if fields.get("auto_create_key", True):
            key_fields = {
                k: fields[k] for k in ("models", "duration", "key_alias", "metadata", "team_id") if k in fields
            }
            key = _create_key(req.conn, {**key_fields, "user_id": user_id}, req.now)["key"]
    return {**record, "key": key, "expires": None}


# --- spend logs


def _parse_spend_date(value: str) -> datetime:
    value = value.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise detail_error(400, f"Invalid date format: {value}. Expected: 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'")


def _spend_row(row: sqlite3.Row) -> dict[str, Any]:
    return {column: row[column] for column in SPEND_LOG_COLUMNS}


def spend_logs_v2(req: Request) -> dict:
    page = req.int_param("page", 1)
    page_size = req.int_param("page_size", 50, le=SPEND_LOGS_MAX_PAGE_SIZE)
    sort_by = req.query.get("sort_by", "startTime")
    sort_order = req.query.get("sort_order", "desc").lower()
    if sort_by not in SPEND_LOG_SORT_FIELDS:
        raise proxy_error(
            400,
            f"Invalid sort_by: {sort_by}. Must be one of: {', '.join(sorted(SPEND_LOG_SORT_FIELDS))}",
            "bad_request",
            "sort_by",
        )
    if sort_order not in ("asc", "desc"):
        raise proxy_error(
            400, f"Invalid sort_order: {sort_order}. Must be one of: asc, desc", "bad_request", "sort_order"
        )
    if not req.query.get("start_date") or not req.query.get("end_date"):
        raise proxy_error(400, "Start date and end date are required", "bad_request", "None")
    # A bare end date parses as that day's midnight and the bound is inclusive, so the day itself is
    # excluded: LiteLLM's quirk, reproduced on purpose.
    where = ['"startTime" >= ?', '"startTime" <= ?']
    params: list[Any] = [iso(_parse_spend_date(req.query["start_date"])), iso(_parse_spend_date(req.query["end_date"]))]
    for name, column in (
        ("team_id", "team_id"),
        ("user_id", '"user"'),
        ("api_key", "api_key"),
        ("model", "model"),
        ("model_id", "model_id"),
        ("model_group", "model_group"),
        ("end_user", "end_user"),
    ):
        if req.query.get(name) is not None:
            where.append(f"{column} = ?")
            params.append(req.query[name])
    if req.query.get("request_id") is not None:
        where.append("(request_id = ? OR litellm_call_id = ?)")
        params += [req.query["request_id"]] * 2
    if req.query.get("session_id") is not None:
        where.append("instr(session_id, ?) > 0")
        params.append(req.query["session_id"])
    status_filter = req.query.get("status_filter")
    if status_filter == "success":
        where.append("(status = 'success' OR status IS NULL)")
    elif status_filter is not None:
        where.append("status = ?")
        params.append(status_filter)
    if req.query.get("key_alias") is not None:  # LiteLLM matches the alias as a substring
        where.append("instr(json_extract(metadata, '$.user_api_key_alias'), ?) > 0")
        params.append(req.query["key_alias"])
    if req.query.get("error_code") is not None:
        where.append("json_extract(metadata, '$.error_information.error_code') = ?")
        params.append(req.query["error_code"])
    for name, op in (("min_spend", ">="), ("max_spend", "<=")):
        if req.query.get(name) is not None:
            where.append(f"spend {op} ?")
            params.append(float(req.query[name]))
    condition = " AND ".join(where)
    raw_total = req.conn.execute(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM spend_logs WHERE {condition} LIMIT ?)",  # noqa: S608
        [*params, SPEND_LOGS_COUNT_CAP + 1],
    ).fetchone()[0]
    capped = raw_total > SPEND_LOGS_COUNT_CAP
    total = SPEND_LOGS_COUNT_CAP if capped else raw_total
    order = f'"{sort_by}" {sort_order.upper()}, request_id {sort_order.upper()}'
    rows = req.conn.execute(
        f"SELECT * FROM spend_logs WHERE {condition} ORDER BY {order} LIMIT ? OFFSET ?",  # noqa: S608
        [*params, page_size, (page - 1) * page_size],
    ).fetchall()
    return {
        "data": [_spend_row(row) for row in rows],
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": (total + page_size - 1) // page_size,
        "total_is_capped": capped,
    }


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


def _bearer(headers: Any) -> str | None:
    value = headers.get("Authorization") or ""
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return headers.get("x-litellm-api-key") or None


def _auth_error(message: str, param: str = "None") -> ApiError:
    return proxy_error(401, f"Authentication Error, {message}", "auth_error", param)


def _unknown_key(secret: str) -> ApiError:
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
    insert_rows(req.conn, [row])
    return error


def insert_rows(
    conn: sqlite3.Connection, rows: list[dict[str, Any]], spend: float = 0.0, caller: Caller | None = None
) -> None:
    """Write spend rows and add `spend` to the key, team and user in one transaction."""
    with _Transaction(conn):
        conn.executemany(_INSERT_SPEND_ROW, [_normalize_row(row) for row in rows])
        if caller is not None and caller.record is not None:
            record = _key_row(conn, caller.api_key)
            if record is not None:
                record["spend"] = record["spend"] + spend
                record["last_active"] = iso(utcnow())
                _save_key(conn, record)
            if caller.team_id:
                conn.execute("UPDATE teams SET spend = spend + ? WHERE team_id = ?", (spend, caller.team_id))
            if caller.user_id:
                conn.execute("UPDATE users SET spend = spend + ? WHERE user_id = ?", (spend, caller.user_id))


def _authenticate_llm_call(req: Request, master_key: str) -> Caller:
    secret = _bearer(req.headers)
    if not secret:
        raise _auth_error("No api key passed in.")
    if hmac.compare_digest(secret.encode(), master_key.encode()):
        return Caller(api_key=MASTER_KEY_API_KEY, secret=secret, record=None)
    record = _key_row(req.conn, hash_if_needed(secret))
    if record is None:
        raise _unknown_key(secret)
    return Caller(api_key=record["token"], secret=secret, record=record)


def _check_key(req: Request, ctx: CallContext) -> None:
    """LiteLLM's auth checks in its order: blocked, model access, expiry, budget."""
    record = ctx.caller.record
    if record is None:
        return
    if record.get("blocked") is True:
        error = _auth_error("Key is blocked. Update via `/key/unblock` if you're an admin.")
        raise _refusal(ctx, req, error, "ProxyException")
    team = _team_row(req.conn, ctx.caller.team_id) if ctx.caller.team_id else None
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
    status = _litellm().budget_exceeded_status_code
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
    with _Transaction(req.conn):
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
    litellm = _litellm()
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


class SandboxServer(ThreadingHTTPServer):
    """The sandbox process: an HTTP server over one SQLite file, plus the test-only fault switch."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # concurrency tests open many connections at once

    def __init__(self, address: tuple[str, int], *, db_path: str | Path, master_key: str) -> None:
        init_db(db_path)
        self.db_path = str(db_path)
        self.master_key = master_key
        self._faults_lock = threading.Lock()
        self._fail_next = 0
        self._fail_status = 500
        self._fail_message = "Sandbox fault injected"
        self._delay_next = 0
        self._delay_seconds = 0.0
        super().__init__(address, Handler)

    def set_faults(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self._faults_lock:
            if spec.get("clear"):
                self._fail_next = self._delay_next = 0
            if "fail_next" in spec:
                self._fail_next = int(spec["fail_next"])
                self._fail_status = int(spec.get("status", 500))
                self._fail_message = str(spec.get("message", "Sandbox fault injected"))
            if "delay_next" in spec:
                self._delay_next = int(spec["delay_next"])
                self._delay_seconds = float(spec.get("seconds", 1.0))
            return {
                "fail_next": self._fail_next,
                "status": self._fail_status,
                "delay_next": self._delay_next,
                "seconds": self._delay_seconds,
            }

    def take_fault(self) -> tuple[float, ApiError | None]:
        """(seconds to wait, error to answer) for the next admin call, consuming one of each."""
        with self._faults_lock:
            delay = 0.0
            if self._delay_next > 0:
                self._delay_next -= 1
                delay = self._delay_seconds
            error = None
            if self._fail_next > 0:
                self._fail_next -= 1
                error = proxy_error(self._fail_status, self._fail_message, "internal_server_error")
            return delay, error


AdminRoute = Callable[[Request], Any]
ADMIN_ROUTES: dict[tuple[str, str], AdminRoute] = {
    ("POST", "/key/generate"): key_generate,
    ("POST", "/key/update"): key_update,
    ("POST", "/key/delete"): key_delete,
    ("POST", "/key/block"): key_block,
    ("POST", "/key/unblock"): key_unblock,
    ("GET", "/key/info"): key_info,
    ("GET", "/key/list"): key_list,
    ("POST", "/team/new"): team_new,
    ("POST", "/team/update"): team_update,
    ("GET", "/team/info"): team_info,
    ("POST", "/user/new"): user_new,
    ("GET", "/spend/logs/v2"): spend_logs_v2,
}
CHAT_PATHS = {"/chat/completions", "/v1/chat/completions"}


class Handler(BaseHTTPRequestHandler):
    """Routes one HTTP request; each request gets its own SQLite connection."""

    server: SandboxServer
    protocol_version = "HTTP/1.1"
    server_version = "govsite-sandbox-gateway"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # --- plumbing

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise validation_error(
                [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "input": {}}]
            ) from exc

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        conn = connect(self.server.db_path)
        try:
            try:
                body = self._read_body() if method == "POST" else {}
                req = Request(conn, method, path, query, self.headers, body, self.client_address[0])
                self._route(req)
            except ApiError as error:
                self._send_json(error.status, error.payload, error.headers)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception as exc:
                # A sandbox bug or a locked database: answer as LiteLLM's own catch-all does (a 500 the
                # client treats as retryable) and keep the traceback in the log.
                logger.exception("sandbox failed on %s %s", method, path)
                error = proxy_error(500, f"Sandbox gateway error: {type(exc).__name__}", "internal_server_error")
                self._send_json(error.status, error.payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test, usually); nobody is left to answer.
            logger.debug("client went away during %s %s", method, path)
        finally:
            conn.close()

    def _route(self, req: Request) -> None:
        if req.method == "GET" and req.path in ("/health/liveliness", "/health/liveness"):
            self._send_json(200, "I'm alive!")
            return
        if req.method == "POST" and req.path in CHAT_PATHS:
            self._chat(req)
            return
        if (req.method, req.path) == ("POST", "/sandbox/faults"):
            self._require_master_key(req)
            self._send_json(200, self.server.set_faults(req.body if isinstance(req.body, dict) else {}))
            return
        route = ADMIN_ROUTES.get((req.method, req.path))
        if route is None:
            self._send_json(404, {"detail": "Not Found"})
            return
        self._require_master_key(req)
        delay, error = self.server.take_fault()
        if delay:
            time.sleep(delay)
        if error is not None:
            raise error
        self._send_json(200, route(req))

    def _require_master_key(self, req: Request) -> None:
        secret = _bearer(req.headers)
        if not secret:
            raise _auth_error("No api key passed in.")
        if hmac.compare_digest(secret.encode(), self.server.master_key.encode()):
            return
        if _key_row(req.conn, hash_if_needed(secret)) is None:
            raise _unknown_key(secret)
        raise _auth_error(
            "Only proxy admin can be used to generate, delete, update info for new keys/users/teams. "
            f"Route={req.path}. Your role=internal_user."
        )

    # --- LLM route

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
            caller.record = _key_row(req.conn, caller.api_key)
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
        litellm = _litellm()
        response = litellm.completion(model=provider_model, messages=messages, mock_response=mock_text)
        usage = response.usage.model_dump()
        if cached:
            # Providers report prompt-cache reads in prompt_tokens_details; the mock never does.
            from litellm.types.utils import Usage

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
        insert_rows(req.conn, [row], spend, ctx.caller)
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
        litellm = _litellm()
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
        breakdown = price(provider_model, usage["prompt_tokens"], usage["completion_tokens"], _cached_tokens(usage))
        # Without include_usage the provider never reports usage to the proxy: tokens are counted
        # afterwards but the call is logged at $0, the under-count the ledger has to repair.
        spend = breakdown["total_cost"] if breakdown and include_usage else 0.0
        row = ctx.row(
            request_id=request_id,
            model=provider_model,
            spend=spend,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            cost_breakdown=breakdown if include_usage else None,
            completion_start_time=first_chunk_at,
            end_time=utcnow(),
            stream=True,
        )
        insert_rows(req.conn, [row], spend, ctx.caller)


def serve(*, host: str, port: int, db_path: str | Path, master_key: str) -> None:
    """Run the sandbox gateway until interrupted."""
    _litellm()  # pay the import once, before the first request rather than during it
    _request_models()
    server = SandboxServer((host, port), db_path=db_path, master_key=master_key)
    logger.info("sandbox gateway on http://%s:%s (db %s)", host, port, db_path)
    print(f"sandbox gateway listening on http://{host}:{server.server_address[1]}", flush=True)  # noqa: T201
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("sandbox gateway stopping")
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the govsite sandbox gateway (a stand-in LiteLLM proxy).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4000)
    parser.add_argument("--db", default="var/sandbox-gateway.sqlite3", help="SQLite file for the sandbox's state")
    parser.add_argument("--master-key", default="sk-sandbox-master-key")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    serve(host=args.host, port=args.port, db_path=args.db, master_key=args.master_key)


if __name__ == "__main__":
    main()
