"""The sandbox's SQLite store, the constants it shares with LiteLLM, time, and litellm loaded late."""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
SPEND_LOG_SORT_FIELDS = ("spend", "total_tokens", "startTime", "endTime", "request_duration_ms", "model", "ttft_ms")
# LiteLLM's spend-log writer (litellm.proxy.utils.update_spend_logs via proxy_server's update_spend job):
# rows wait in memory and are written every PROXY_BATCH_WRITE_AT seconds (10, plus 0-5 s of jitter),
# or sooner once SPEND_LOG_QUEUE_SIZE_THRESHOLD (100) are waiting.
SPEND_LOG_BATCH_SECONDS = 10.0
SPEND_LOG_QUEUE_THRESHOLD = 100
CUSTOM_KEYS_DISABLED = "Custom API key values are disabled by your administrator. Keys must be auto-generated."
# What a proxy without DATABASE_URL answers (litellm.proxy._types.CommonProxyErrors and the handlers).
DB_NOT_CONNECTED = (
    "DB not connected. This endpoint needs a database; set DATABASE_URL to a "
    "PostgreSQL connection string (postgresql://...) to enable it. "
    "See https://docs.litellm.ai/docs/proxy/virtual_keys"
)
DATABASE_NOT_CONNECTED = (
    "Database not connected. Connect a database to your proxy - "
    "https://docs.litellm.ai/docs/simple_proxy#managing-auth---virtual-keys"
)
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

# The columns /spend/logs/v2 selects (spend_management_endpoints._SPEND_LOG_LIST_COLUMNS): not the heavy
# messages, response and proxy_server_request, nor billing_agent_id.
SPEND_LOG_V2_COLUMNS = tuple(
    column
    for column in SPEND_LOG_COLUMNS
    if column not in ("messages", "response", "proxy_server_request", "billing_agent_id")
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
def load_litellm():
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def load_request_models():
    from litellm.proxy import _types

    return _types


# --- time


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """One fixed ISO format (microseconds, +00:00) so stored times also sort and compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def iso_ms(moment: datetime) -> str:
    """`iso` at LiteLLM_SpendLogs' precision: Prisma's DateTime is PostgreSQL timestamp(3), milliseconds."""
    moment = moment.astimezone(UTC)
    return iso(moment.replace(microsecond=moment.microsecond // 1000 * 1000))


def parse_iso(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def duration_seconds(duration: str) -> int:
    from litellm.litellm_core_utils.duration_parser import duration_in_seconds

    return duration_in_seconds(duration)


def next_budget_reset(duration: str, now: datetime) -> str:
    from litellm.litellm_core_utils.duration_parser import get_next_standardized_reset_time

    return iso(get_next_standardized_reset_time(duration, now))


# --- the proxy's general_settings that change what the admin API answers


@dataclass
class GatewaySettings:
    """What LiteLLM's config decides and govsite must cope with; set from the command line, and in tests
    through the test-only POST /sandbox/settings."""

    disable_custom_api_keys: bool = False  # general_settings.disable_custom_api_keys: 403 to a caller's key
    database: bool = True  # False: a proxy started without DATABASE_URL

    def update(self, spec: dict) -> dict:
        for name in ("disable_custom_api_keys", "database"):
            if name in spec:
                setattr(self, name, bool(spec[name]))
        return {"disable_custom_api_keys": self.disable_custom_api_keys, "database": self.database}


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


class Transaction:
    """`with Transaction(conn):` — BEGIN IMMEDIATE, so concurrent writers queue instead of deadlocking."""

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
