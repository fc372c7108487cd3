"""Measure the ledger ingest against PostgreSQL's COPY on the same rows.

    python manage.py bench_ingest [--rows 200000] [--page-size 1000] [--existing 50000000] [--months 25]

Both runs write into a scratch schema that is dropped afterwards, so the real ledger is untouched:
the ingest into copies of the ledger tables (partitioned by month as the real ledger is on PostgreSQL,
same indexes and constraints, already holding --existing rows spread over --months monthly partitions,
through the real `budgets.ingest.ingest_spend_rows`, one call per page as the pull job makes them),
COPY into an unindexed table shaped like LiteLLM's own `LiteLLM_SpendLogs`. The last line is the ratio.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from budgets import pricing
from budgets.ingest import ingest_spend_rows
from govsite.devtools.ledger_fill import partitioned_ledger
from keys.models import VirtualKey

_MODELS = (
    # (model, model_group, provider, input $/token, output $/token) — prices only shape the gateway figure
    ("openai/gpt-4o", "gpt-4o", "openai", 2.5e-06, 1e-05),
    ("openai/gpt-4o-mini", "gpt-4o-mini", "openai", 1.5e-07, 6e-07),
    ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", "anthropic", 3e-06, 1.5e-05),
    ("anthropic/claude-haiku-4-5", "claude-haiku-4-5", "anthropic", 1e-06, 5e-06),
    ("gemini/gemini-2.5-pro", "gemini-2.5-pro", "gemini", 1.25e-06, 1e-05),
    ("openai/internal-llm", "internal-llm", "openai", 0.0, 0.0),
)
_AGENTS = (
    ("claude-cli/2.0.1 (external, cli)", "claude-cli"),
    ("codex_cli_rs/0.40.0", "codex_cli_rs"),
    ("kimi-cli/1.2", "kimi-cli"),
    ("OpenAI/Python 1.99.0", "OpenAI/Python"),
    ("curl/8.5.0", "curl"),
)


def _metadata(
    *,
    key_hash: str,
    alias: str | None,
    user_agent: str,
    call_id: str,
    usage: dict,
    error: dict | None,
    model_group: str,
    status: str,
) -> dict:
    """The `metadata` column as LiteLLM 1.106 writes it (see the litellm-samples reference rows)."""
    return {
        "actor_agent_id": None,
        "target_agent_id": None,
        "billing_agent_id": None,
        "agent_execution_mode": None,
        "verified_human_user_id": None,
        "additional_usage_values": {"completion_tokens_details": None, "prompt_tokens_details": None},
        "user_api_key": key_hash,
        "user_api_key_alias": alias,
        "user_api_key_team_id": None,
        "user_api_key_project_id": None,
        "user_api_key_project_alias": None,
        "user_api_key_org_id": None,
        "user_api_key_user_id": "default_user_id",
        "user_api_key_team_alias": None,
        "spend_logs_metadata": {"ticket": "ENG-42"} if call_id.endswith("7") else None,
        "requester_ip_address": "10.0.0.12",
        "user_agent": user_agent,
        "litellm_call_id": call_id,
        "applied_guardrails": [],
        "mcp_tool_call_metadata": None,
        "vector_store_request_metadata": None,
        "routing_decision": None,
        "internal_call_origin": None,
        "guardrail_information": None,
        "eval_information": None,
        "status": status,
        "proxy_server_request": None,
        "batch_models": None,
        "batch_successful_requests": None,
        "batch_failed_requests": None,
        "error_information": error,
        "usage_object": usage,
        "cold_storage_object_key": None,
        "litellm_overhead_time_ms": None,
        "attempted_retries": 0,
        "max_retries": 2,
        "attempted_fallbacks": 0,
        "original_model_group": model_group,
        "cost_breakdown": None,
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


def generate_rows(count: int, *, seed: int = 7, key_hashes: list[str] | None = None) -> list[dict]:
    """`count` spend-log rows in LiteLLM's shape: mixed models and tools, 2% rate-limited, 1% over
    budget, a tenth streamed with spend 0, some cached tokens, spread over the last 30 days."""
    rng = random.Random(seed)
    run = uuid.UUID(int=rng.getrandbits(128)).hex[:8]
    hashes = list(key_hashes or []) + [hashlib.sha256(f"sk-bench-{i}".encode()).hexdigest() for i in range(200)]
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        model, group, provider, p_in, p_out = _MODELS[rng.randrange(len(_MODELS))]
        agent, agent_tag = _AGENTS[rng.randrange(len(_AGENTS))]
        start = now - timedelta(seconds=rng.randrange(30 * 86400), microseconds=rng.randrange(10**6))
        duration = rng.randrange(200, 60000)
        roll = rng.random()
        call_id = str(uuid.UUID(int=rng.getrandbits(128)))
        status, error = "success", None
        prompt, completion = rng.randrange(50, 60000), rng.randrange(1, 4000)
        cached = rng.randrange(0, prompt // 2) if rng.random() < 0.3 else 0
        spend = prompt * p_in + completion * p_out
        if roll < 0.02:
            status, prompt, completion, cached, spend = "failure", 0, 0, 0, 0.0
            error = {
                "error_code": "429",
                "error_class": "RateLimitError",
                "normalized_error": "429_RATE_LIMIT_EXCEEDED",
                "error_message": "Rate limit exceeded",
                "llm_provider": provider,
            }
        elif roll < 0.03:
            status, prompt, completion, cached, spend = "failure", 0, 0, 0, 0.0
            error = {
                "error_code": "400",
                "error_class": "BudgetExceededError",
                "normalized_error": "429_BUDGET_EXCEEDED",
                "error_message": "Budget has been exceeded!",
            }
        elif roll < 0.13:
            spend = 0.0  # a streamed call whose usage the gateway priced at $0
        usage = {
            "completion_tokens": completion,
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
            "completion_tokens_details": None,
            "prompt_tokens_details": {"cached_tokens": cached} if cached else None,
        }
        key_hash = hashes[rng.randrange(len(hashes))]
        iso = start.isoformat()
        rows.append(
            {
                "request_id": f"chatcmpl-bench-{run}-{i:09d}",
                "call_type": "acompletion",
                "api_key": key_hash,
                "spend": spend,
                "total_tokens": prompt + completion,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "startTime": iso,
                "endTime": (start + timedelta(milliseconds=duration)).isoformat(),
                "completionStartTime": (start + timedelta(milliseconds=duration // 4)).isoformat(),
                "request_duration_ms": duration,
                "model": model,
                "model_id": hashlib.md5(model.encode()).hexdigest(),  # noqa: S324
                "model_group": group,
                "custom_llm_provider": provider,
                "api_base": "",
                "user": "default_user_id",
                "metadata": json.dumps(
                    _metadata(
                        key_hash=key_hash,
                        alias=None,
                        user_agent=agent,
                        call_id=call_id,
                        usage=usage,
                        error=error,
                        model_group=group,
                        status=status,
                    )
                ),
                "cache_hit": "False",
                "cache_key": "Cache OFF",
                "request_tags": json.dumps([f"User-Agent: {agent_tag}", f"User-Agent: {agent}"]),
                "team_id": "",
                "organization_id": "",
                "end_user": "",
                "requester_ip_address": "10.0.0.12",
                "status": status,
                "session_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "litellm_call_id": call_id,
                "messages": "{}",
                "response": "{}",
                "proxy_server_request": "{}",
            }
        )
    return rows


_COPY_COLUMNS = (
    ("request_id", "text"),
    ("call_type", "text"),
    ("api_key", "text"),
    ("spend", "double precision"),
    ("total_tokens", "integer"),
    ("prompt_tokens", "integer"),
    ("completion_tokens", "integer"),
    ('"startTime"', "timestamptz"),
    ('"endTime"', "timestamptz"),
    ('"completionStartTime"', "timestamptz"),
    ("request_duration_ms", "integer"),
    ("model", "text"),
    ("model_id", "text"),
    ("model_group", "text"),
    ("custom_llm_provider", "text"),
    ("api_base", "text"),
    ('"user"', "text"),
    ("metadata", "jsonb"),
    ("cache_hit", "text"),
    ("cache_key", "text"),
    ("request_tags", "jsonb"),
    ("team_id", "text"),
    ("organization_id", "text"),
    ("end_user", "text"),
    ("requester_ip_address", "text"),
    ("status", "text"),
    ("session_id", "text"),
    ("litellm_call_id", "text"),
    ("messages", "jsonb"),
    ("response", "jsonb"),
    ("proxy_server_request", "jsonb"),
)


class Command(BaseCommand):
    help = "Ingest N generated LiteLLM spend rows through the ledger and COPY the same rows; compare rows/s."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=200_000)
        parser.add_argument("--page-size", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--existing", type=int, default=50_000_000, help="Rows already in the partitioned ledger (issue: 50 M)."
        )
        parser.add_argument("--months", type=int, default=25, help="Monthly partitions the existing rows span.")

    def handle(self, *args, rows: int, page_size: int, seed: int, existing: int = 0, months: int = 25, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "bench_ingest compares against PostgreSQL COPY: set DATABASE_URL to a PostgreSQL database."
            )
        if rows < 1 or page_size < 1:
            raise CommandError("--rows and --page-size must be positive.")
        known = list(VirtualKey.objects.values_list("token_hash", flat=True)[:50])
        self.stdout.write(f"generating {rows:,} LiteLLM spend rows ...")
        data = generate_rows(rows, seed=seed, key_hashes=known)
        schema = f"bench_ingest_{os.getpid()}"
        try:
            self._prepare(schema)
            self._partition(schema, existing, months)
            ingest_rate = self._ingest(data, page_size)
            copy_rate = self._copy(data)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"SET search_path TO public; DROP SCHEMA IF EXISTS {schema} CASCADE")
        self.stdout.write(f"ingest (budgets.ingest, pages of {page_size}): {ingest_rate:,.0f} rows/s")
        self.stdout.write(f"COPY into an unindexed table: {copy_rate:,.0f} rows/s")
        self.stdout.write(f"ratio ingest/COPY: {ingest_rate / copy_rate:.2f}")

    def _prepare(self, schema: str) -> None:
        # The ingest's unqualified table names resolve to the scratch copies first; keys, model
        # policies and budgets still come from the real tables behind them on the search path.
        columns = ", ".join(f"{name} {kind}" for name, kind in _COPY_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {schema}")
            for table in ("budgets_spendrecord", "budgets_dailyrollup"):
                cursor.execute(f"CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)")
            cursor.execute(f"CREATE TABLE {schema}.bench_spendlogs_copy ({columns})")
            cursor.execute(f"SET search_path TO {schema}, public")

    def _partition(self, schema: str, existing: int, months: int) -> None:
        """The scratch ledger partitioned by month (budgets.partitions' SQL), its older months holding
        `existing` rows made by one INSERT ... SELECT over generate_series (their shape matters, not
        their realism: the ingest's probes and the unique key's index sizes are what they load)."""
        from budgets.partitions import LEDGER, Month  # noqa: PLC0415 - bench only

        current = Month.of(datetime.now(UTC))
        span = months * 30 * 86400
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {schema}.{LEDGER}")
            partitioned_ledger(
                cursor,
                schema=schema,
                months=[current.shifted(offset) for offset in range(-months + 1, 2)],
                rows=existing,
                select=f"""'existing-' || g, now() - make_interval(secs => (g::bigint * 7919) %% {span} + 1),
                        md5((g %% 500)::text), '', 'openai/gpt-4o', 'gpt-4o', 'openai',
                        1000 + g %% 5000, g %% 900, 0, 0,
                        'success', '', 'claude-code', 'claude-cli/2.0.1', '[]', 0.001, 0.001,
                        'gateway', 'pull', now()""",
                say=self.stdout.write,
            )

    def _ingest(self, data: list[dict], page_size: int) -> float:
        self.stdout.write("ingesting through budgets.ingest.ingest_spend_rows ...")
        # A worker imports litellm once at start; its import (~2 s) is not part of the ingest rate.
        pricing.litellm_cost("gpt-4o", 1, 1, 0, 0)
        started = time.perf_counter()
        inserted = 0
        for offset in range(0, len(data), page_size):
            inserted += ingest_spend_rows(data[offset : offset + page_size], "pull").inserted
        elapsed = time.perf_counter() - started
        if inserted != len(data):
            raise CommandError(f"ingest booked {inserted} of {len(data)} rows")
        return len(data) / elapsed

    def _copy(self, data: list[dict]) -> float:
        self.stdout.write("loading the same rows with COPY ...")
        names = [name.strip('"') for name, _ in _COPY_COLUMNS]
        column_list = ", ".join(name for name, _ in _COPY_COLUMNS)
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
            with raw.copy(f"COPY bench_spendlogs_copy ({column_list}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row([row.get(name) for name in names])
        elapsed = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM bench_spendlogs_copy")
            (count,) = cursor.fetchone()
        if count != len(data):
            raise CommandError(f"COPY loaded {count} of {len(data)} rows")
        return len(data) / elapsed
