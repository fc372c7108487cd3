"""Spend-log rows in LiteLLM's exact shape: the row builder, the batch writer, and GET /spend/logs/v2."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from govsite.devtools.sandbox.store import (
    MASTER_KEY_API_KEY,
    MODEL_MAP,
    SPEND_LOG_BATCH_SECONDS,
    SPEND_LOG_COLUMNS,
    SPEND_LOG_QUEUE_THRESHOLD,
    SPEND_LOG_SORT_FIELDS,
    SPEND_LOG_V2_COLUMNS,
    SPEND_LOGS_COUNT_CAP,
    SPEND_LOGS_MAX_PAGE_SIZE,
    Transaction,
    connect,
    init_db,
    iso,
    iso_ms,
    parse_iso,
    utcnow,
)
from govsite.devtools.sandbox.validation import Request, detail_error, proxy_error

logger = logging.getLogger("govsite.devtools.sandbox")

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


def normalize_row(row: dict[str, Any]) -> tuple:
    values = []
    for column in SPEND_LOG_COLUMNS:
        value = row.get(column)
        if column in ("startTime", "endTime", "completionStartTime") and value is not None:
            value = iso_ms(value if isinstance(value, datetime) else parse_iso(value))
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        values.append(value)
    return tuple(values)


_QUOTED_COLUMNS = ", ".join(f'"{column}"' for column in SPEND_LOG_COLUMNS)
_PLACEHOLDERS = ", ".join("?" for _ in SPEND_LOG_COLUMNS)
INSERT_SPEND_ROW = f"INSERT INTO spend_logs ({_QUOTED_COLUMNS}) VALUES ({_PLACEHOLDERS})"  # noqa: S608 - constant columns


def insert_spend_rows(db_path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Bulk-insert spend-log rows (e.g. from `make_spend_row`) straight into a sandbox database, as the
    writer's batch would: the way tests place a row that LiteLLM wrote late."""
    init_db(db_path)
    conn = connect(db_path)
    try:
        with Transaction(conn):
            cursor = conn.executemany(INSERT_SPEND_ROW, (normalize_row(row) for row in rows))
        return cursor.rowcount
    finally:
        conn.close()


class SpendLogWriter:
    """LiteLLM's spend-log batch writer: a call's row waits in memory and reaches the table with the
    next batch, every `interval` seconds or as soon as `threshold` rows wait. A row therefore appears
    seconds after its request, with its startTime unchanged; rows still waiting when the process is
    killed are lost, as in LiteLLM (it drains its queue only on a clean shutdown)."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        interval: float = SPEND_LOG_BATCH_SECONDS,
        threshold: int = SPEND_LOG_QUEUE_THRESHOLD,
    ) -> None:
        self.db_path = str(db_path)
        self.interval = interval
        self.threshold = threshold
        self._lock = threading.Lock()
        self._waiting: list[tuple] = []
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            self._waiting.extend(normalize_row(row) for row in rows)
            full = len(self._waiting) >= self.threshold
        if full:
            self._wake.set()

    def set_interval(self, seconds: float) -> None:
        """A new batch interval, counted from now (what is waiting goes out with this batch)."""
        self.interval = seconds
        self._wake.set()

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def flush(self) -> int:
        """Write every waiting row in one transaction; returns how many."""
        with self._lock:
            batch, self._waiting = self._waiting, []
        if not batch:
            return 0
        conn = connect(self.db_path)
        try:
            with Transaction(conn):
                conn.executemany(INSERT_SPEND_ROW, batch)
        except Exception:
            with self._lock:  # LiteLLM re-queues a batch its database refused
                self._waiting[:0] = batch
            raise
        finally:
            conn.close()
        return len(batch)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                logger.exception("sandbox spend-log writer failed; the batch waits for the next one")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spend-log-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A clean shutdown drains the queue, as LiteLLM's does."""
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()


# --- spend logs


def _no_database() -> None:
    """A proxy without a database answers /spend/logs/v2 with this 401 (its handler's first check)."""
    raise proxy_error(401, "Prisma Client is not initialized", "internal_error", "None")


def _parse_spend_date(value: str) -> datetime:
    value = value.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise detail_error(400, f"Invalid date format: {value}. Expected: 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'")


def _spend_row(row: sqlite3.Row) -> dict[str, Any]:
    """A row as /spend/logs/v2 serialises it: its list columns only, `metadata` re-hydrated into an
    object (`_hydrate_spend_log_metadata`; unreadable metadata becomes {}), `request_tags` still JSON
    text, and times at the table's millisecond precision."""
    values = {column: row[column] for column in SPEND_LOG_V2_COLUMNS}
    try:
        metadata = json.loads(values["metadata"]) if isinstance(values["metadata"], str) else values["metadata"]
    except ValueError:
        metadata = {}
    values["metadata"] = metadata if metadata is not None else None
    return values


_TTFT_MS = (
    'CASE WHEN "completionStartTime" IS NULL OR "completionStartTime" = "endTime" THEN NULL '
    'ELSE (julianday("completionStartTime") - julianday("startTime")) * 86400000 END'
)


def spend_logs_v2(req: Request) -> dict:
    if not req.settings.database:
        _no_database()
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
    direction = sort_order.upper()
    # ttft_ms: NULLS LAST in either direction, as LiteLLM's query.
    order = f"{_TTFT_MS} IS NULL, {_TTFT_MS} {direction}" if sort_by == "ttft_ms" else f'"{sort_by}" {direction}'
    # NOT LiteLLM's behaviour: it orders by the sort column alone, so rows that tie (one startTime) come
    # in whatever order PostgreSQL returns them and offset pages over a tie may differ between reads.
    # The sandbox breaks ties by request_id to stay deterministic; the contract tests over LiteLLM's own
    # handler (tests/contract/) are where paging over ties is tried.
    order += f", request_id {direction}"
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
