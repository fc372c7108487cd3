"""Time a completeness pass over one day of spend-log rows, none of them missing from the ledger.

    python manage.py bench_completeness [--rows 1000000] [--day 2026-01-15]

The rows are served by LiteLLM's own `/spend/logs/v2` (its unmodified proxy app, Prisma's executor
stood in for: govsite/devtools/litellm_spend_logs.py) from a `LiteLLM_SpendLogs` table made from its
schema.prisma in a scratch schema; the ledger is a scratch copy of the ledger tables already holding
every row, so the pass reads the whole day and books nothing. Both schemas are dropped afterwards.
Prints the pass's wall time, rows read per second and its peak memory (RSS growth over the start).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from urllib.parse import quote

import httpx
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from budgets.completeness import spend_completeness_run
from budgets.models import PullState
from govsite.devtools.litellm_spend_logs import TABLE, spend_logs_ddl
from govsite.devtools.processes import free_port

MASTER = "sk-bench-completeness"
_KEYS = 50
_METADATA = (
    '{"user_api_key_alias": null, "user_agent": "claude-cli/2.0.1 (external, cli)", "status": "success",'
    ' "usage_object": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},'
    ' "additional_usage_values": {}, "error_information": null, "cost_breakdown": null}'
)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Command(BaseCommand):
    help = "A completeness pass over a day of N spend-log rows with nothing missing: its time and peak memory."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 1, 15))

    def handle(self, *args, rows: int, day: date, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_completeness needs PostgreSQL: set DATABASE_URL.")
        if rows < 1:
            raise CommandError("--rows must be positive.")
        suffix = os.getpid()
        gateway_schema, ledger_schema = f"bench_litellm_{suffix}", f"bench_ledger_{suffix}"
        process = None
        try:
            self.stdout.write(f"writing {rows:,} rows of {day} into LiteLLM's table ...")
            self._gateway_table(gateway_schema, rows, day)
            self._ledger(ledger_schema, gateway_schema)
            process, url = self._serve(gateway_schema)
            settings.LITELLM_URL, settings.LITELLM_MASTER_KEY = url, MASTER
            settings.GATEWAY_TIMEOUT_SECONDS = 120.0
            first = datetime.combine(day, clock.min, tzinfo=UTC)
            PullState.objects.update_or_create(name="spend_logs_days", defaults={"watermark": first})
            # The day is old enough and the trailing hours hold nothing: the pass reads exactly the day.
            now = first + timedelta(days=1, hours=26)
            self.stdout.write("the completeness pass ...")
            before = _rss_mb()
            started = time.perf_counter()
            result = spend_completeness_run(now=now)
            elapsed = time.perf_counter() - started
            peak = _rss_mb()
        finally:
            if process is not None:
                process.terminate()
                process.wait(20)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SET search_path TO public; DROP SCHEMA IF EXISTS {gateway_schema} CASCADE;"
                    f" DROP SCHEMA IF EXISTS {ledger_schema} CASCADE"
                )
        read = result.days_result
        if result.days != [day.isoformat()] or read.inserted or read.rows_seen < rows:
            raise CommandError(f"the pass read {read.rows_seen:,} rows of {rows:,}, booked {read.inserted:,}")
        self.stdout.write(
            f"completeness pass over {rows:,} rows ({read.rows_seen:,} read in {read.pages:,} pages,"
            f" {read.rereads} windows read again, {read.unverified_windows} short, 0 booked): {elapsed:,.1f} s,"
            f" {read.rows_seen / elapsed:,.0f} rows/s"
        )
        self.stdout.write(
            f"peak memory: {peak:,.0f} MB RSS ({peak - before:+,.0f} MB over the {before:,.0f} MB at start)"
        )

    def _gateway_table(self, schema: str, rows: int, day: date) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {schema}; SET search_path TO {schema}")
            for statement in spend_logs_ddl():
                cursor.execute(statement)
            # Spread evenly over the day, 50 keys, a priced gpt-4o call each: what LiteLLM's writer stores.
            cursor.execute(
                f"""
                INSERT INTO "{TABLE}" (request_id, call_type, api_key, spend, total_tokens, prompt_tokens,
                    completion_tokens, "startTime", "endTime", "completionStartTime", model, model_id, model_group,
                    custom_llm_provider, "user", metadata, cache_hit, cache_key, request_tags, team_id, status,
                    litellm_call_id, request_duration_ms)
                SELECT 'chatcmpl-bench-' || g, 'acompletion', md5('bench-key-' || (g %% %s)), 0.006, 1500, 1200,
                    300, t, t + interval '800 ms', t + interval '200 ms', 'openai/gpt-4o', 'deployment-1',
                    'gpt-4o', 'openai', '', %s::jsonb, 'None', 'Cache OFF', '["User-Agent: claude-cli"]'::jsonb, '',
                    'success', 'call-' || g, 800
                FROM generate_series(0, %s - 1) AS g,
                    LATERAL (SELECT %s::timestamp + (g * (86400000.0 / %s)) * interval '1 ms' AS t) AS s
                """,  # noqa: S608 - the table name is a constant; the values are parameters
                [_KEYS, _METADATA, rows, datetime.combine(day, clock.min), rows],
            )
            cursor.execute(f'ANALYZE "{TABLE}"; SET search_path TO public')

    def _ledger(self, schema: str, gateway_schema: str) -> None:
        """Scratch copies of every ledger and rollup table, the ledger already holding each row."""
        tables = [
            model._meta.db_table
            for app in ("budgets", "adoption")
            for model in apps.get_app_config(app).get_models()
            if not model._meta.proxy and model._meta.managed
        ]
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {schema}")
            for table in tables:
                cursor.execute(f"CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)")
            cursor.execute(
                f"""
                INSERT INTO {schema}.budgets_spendrecord (request_id, time, token_hash, key_alias, model, model_group,
                    provider, prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens, status,
                    error_type, client_tool, user_agent, request_tags, gateway_spend, cost, cost_source, source,
                    ingested_at)
                SELECT request_id, "startTime" AT TIME ZONE 'UTC', api_key, '', model, model_group,
                    custom_llm_provider, prompt_tokens, completion_tokens, 0, 0, 'success', '', 'claude-cli', '',
                    '[]'::jsonb, spend, spend, 'gateway', 'pull', now()
                FROM {gateway_schema}."{TABLE}"
                """  # noqa: S608 - schema names made here from the process id
            )
            cursor.execute(f"SET search_path TO {schema}, public")

    def _serve(self, schema: str) -> tuple[subprocess.Popen, str]:
        params = connection.settings_dict
        dsn = (
            f"postgresql://{quote(params['USER'] or '')}:{quote(params['PASSWORD'] or '')}@"
            f"{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"
            f"?options={quote(f'-c search_path={schema}')}"
        )
        port = free_port()
        env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
        env.update(SPEND_LOGS_DSN=dsn, SPEND_LOGS_PORT=str(port), LITELLM_MASTER_KEY=MASTER)
        env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        process = subprocess.Popen(
            [sys.executable, "-m", "govsite.devtools.litellm_spend_logs"], env=env, cwd=settings.BASE_DIR
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError("LiteLLM's proxy app exited before it answered")
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
            time.sleep(0.5)  # waiting for the server process to start listening
        process.terminate()
        raise CommandError("LiteLLM's proxy app did not answer within 120 s")
