"""`python manage.py bench_focus [--rows 10000000] [--keys 2000]`: the FOCUS export of one month of N ledger rows
— its wall time and peak memory, for CSV and for Parquet.

It runs in a bench database next to DATABASE_URL's (`govsite_bench_focus`, or `--database-url`), created and
migrated if missing, and filled once (again with --refill or another --rows/--keys) with one INSERT ... SELECT
over generate_series: N requests in February 2026 over K keys in 20 teams, models priced by the gateway,
computed, flat-rate, cache hits and unpriced, a quarter of them with a project tag. Then, for each format, a fresh
process writes the month's file as the export job does (`budgets.finops.exports.focus_write`, a streamed grouped
read) and reports its wall time, CPU time, peak RSS (getrusage maxrss; RSS before the build beside it), the
FOCUS rows and the file's size; and checks the file's effective cost against the ledger's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from budgets.finops import exports, selectors
from budgets.models import SpendRecord
from govsite.accounts.models import Team, User
from govsite.devtools import processes
from keys.models import DataClassification, KeyKind, KeyRequest, ModelPolicy, VirtualKey

BENCH_DB = "govsite_bench_focus"
MONTH = date(2026, 2, 1)
MONTH_END = date(2026, 2, 28)
# (model as logged, model group, provider, cost source, gateway cost per request)
MODELS = (
    ("gpt-4o", "gpt-4o", "openai", "gateway", "0.004500000"),
    ("gpt-4o-mini", "gpt-4o-mini", "openai", "gateway", "0.000270000"),
    ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", "anthropic", "gateway", "0.008100000"),
    ("anthropic/claude-haiku-4-5", "claude-haiku-4-5", "anthropic", "computed", "0.002700000"),
    ("gpt-4o", "gpt-4o", "openai", "cache_hit", "0"),
    ("moonshot/kimi-k2.5", "kimi-k2.5", "moonshot", "flat_rate", "0"),
    ("openai/acme-private", "acme-private", "openai", "unpriced", None),
)


def _maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
    except (OSError, ValueError):
        return 0.0


class Command(BaseCommand):
    help = "FOCUS export of one month of N ledger rows (CSV and Parquet): time and peak memory."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=10_000_000)
        parser.add_argument("--keys", type=int, default=2_000)
        parser.add_argument("--formats", default="parquet,csv", help="comma-separated: parquet, csv")
        parser.add_argument("--database-url", default="", help=f"bench database (default: {BENCH_DB} on DATABASE_URL)")
        parser.add_argument("--refill", action="store_true", help="fill the bench database again")
        parser.add_argument("--phase", choices=["fill", "measure"], help=argparse.SUPPRESS)
        parser.add_argument("--format", default="parquet", help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        rows, keys = options["rows"], options["keys"]
        if rows < 1 or keys < 1:
            raise CommandError("--rows and --keys must be positive.")
        if options["phase"] == "fill":
            return self._fill(rows, keys, refill=options["refill"])
        if options["phase"] == "measure":
            return self._measure(options["format"])
        db_url = options["database_url"] or self._bench_url(os.environ.get("DATABASE_URL", ""))
        config = dj_database_url.parse(db_url)
        if config["ENGINE"] != "django.db.backends.postgresql":
            raise CommandError("bench_focus runs on PostgreSQL")
        if processes.recreate_database(config, keep=True):
            self.stdout.write(f"created database {config['NAME']}")
        env = self._env(db_url)
        self.stdout.write(f"bench database {config['NAME']}: migrate")
        self._manage(env, "migrate", "--noinput")
        started = time.monotonic()
        fill = ["--phase", "fill", "--rows", str(rows), "--keys", str(keys)] + (
            ["--refill"] if options["refill"] else []
        )
        self.stdout.write(self._manage(env, "bench_focus", *fill).strip())
        self.stdout.write(f"  ready in {time.monotonic() - started:.1f}s")
        for fmt in [f.strip() for f in options["formats"].split(",") if f.strip()]:
            out = self._manage(env, "bench_focus", "--phase", "measure", "--format", fmt)
            self._report(json.loads(out.strip().splitlines()[-1]))

    def _bench_url(self, url: str) -> str:
        if not url.startswith(("postgres://", "postgresql://")):
            raise CommandError("bench_focus runs on PostgreSQL: set DATABASE_URL or pass --database-url")
        return urlsplit(url)._replace(path=f"/{BENCH_DB}").geturl()

    def _env(self, db_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": db_url,
            "DB_CONN_MAX_AGE": "0",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-focus-only-secret-key-0123456789abcdef",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "localhost",
            "REDIS_URL": "",
            "GOVSITE_VAR_DIR": str(Path(tempfile.gettempdir()) / "govsite-bench-focus"),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LOG_LEVEL": "WARNING",
        }

    def _manage(self, env: dict[str, str], *args: str) -> str:
        result = subprocess.run(  # noqa: S603 - this interpreter and this manage.py
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=6 * 3600,
        )
        if result.returncode != 0:
            raise CommandError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def _report(self, r: dict) -> None:
        self.stdout.write(
            f"FOCUS {r['format']} of {r['ledger_rows']:,} ledger rows ({r['period']}):\n"
            f"  time        {r['seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU in the export process "
            f"({r['ledger_rows'] / max(r['seconds'], 1e-9):,.0f} ledger rows/s; load average {r['load_average']:.1f})\n"
            f"  peak RSS    {r['peak_rss_mb']:.0f} MB (getrusage maxrss; "
            f"{r['rss_before_mb']:.0f} MB before the export)\n"
            f"  file        {r['focus_rows']:,} FOCUS rows, {r['bytes'] / 1024 / 1024:.1f} MB; "
            f"{r['unpriced_rows']:,} unpriced rows (null); effective cost ${r['effective_cost']} "
            f"= ledger ${r['ledger_cost']}: {r['effective_cost'] == r['ledger_cost']}"
        )

    # --- fill (inside the bench database) --------------------------------------------------------------------

    def _fill(self, rows: int, keys: int, *, refill: bool) -> None:
        table = connection.ops.quote_name(SpendRecord._meta.db_table)
        have = SpendRecord.objects.count()
        if not refill and have == rows and VirtualKey.objects.count() == keys:
            self.stdout.write(f"bench data already there: {rows:,} ledger rows, {keys:,} keys")
            return
        started = time.monotonic()
        with transaction.atomic():
            for model in (SpendRecord, VirtualKey, KeyRequest, ModelPolicy, Team):
                with connection.cursor() as cursor:
                    cursor.execute(f"TRUNCATE {connection.ops.quote_name(model._meta.db_table)} CASCADE")
            key_ids = _keys(keys)
            internal = DataClassification.objects.get_or_create(
                key="internal", defaults={"level": 2, "label": "Internal"}
            )[0]
            ModelPolicy.objects.create(
                name="kimi-k2.5", provider="moonshot", flat_rate=True, max_classification=internal
            )
            values = ", ".join(
                "({}, '{}', '{}', '{}', '{}', {})".format(n, m, g, p, s, "NULL" if c is None else f"{c}::numeric")
                for n, (m, g, p, s, c) in enumerate(MODELS)
            )
            seconds = int((MONTH_END - MONTH).days + 1) * 86400
            with connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    WITH models(n, model, model_group, provider, source, cost) AS (VALUES {values}),
                    keys AS (SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, team_id, owner_id, token_hash
                             FROM {connection.ops.quote_name(VirtualKey._meta.db_table)})
                    INSERT INTO {table} (request_id, time, key_id, token_hash, key_alias, user_id, team_id, model,
                        model_group, provider, prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens,
                        status, error_type, client_tool, user_agent, request_tags, gateway_spend, cost, cost_source,
                        source, ingested_at)
                    SELECT 'bench-' || i, %s::timestamptz + ((i * 7919) %% %s) * interval '1 second',
                        k.id, k.token_hash, '', k.owner_id, k.team_id, m.model, m.model_group, m.provider,
                        1000 + i %% 500, 200 + i %% 300, 0, 0, 'success', '', 'other', '',
                        CASE WHEN i %% 4 = 0 THEN ('["project:p' || (i %% 10) || '"]')::jsonb ELSE '[]'::jsonb END,
                        COALESCE(m.cost, 0), m.cost, m.source, 'pull', now()
                    FROM generate_series(0::bigint, %s - 1) AS i
                    JOIN keys k ON k.n = (i * 31) %% %s
                    JOIN models m ON m.n = (i / 3) %% {len(MODELS)}
                    """,  # noqa: S608 - table names from the models, the rest constants
                    [datetime.combine(MONTH, datetime.min.time(), tzinfo=UTC), seconds, rows, len(key_ids)],
                )
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
        self.stdout.write(f"filled in {time.monotonic() - started:.1f}s: {rows:,} ledger rows over {keys:,} keys")

    # --- measure (a fresh process inside the bench database) ---------------------------------------------------

    def _measure(self, fmt: str) -> None:
        out = Path(tempfile.mkdtemp(prefix="govsite-bench-focus-")) / f"focus.{fmt}"
        ledger_rows = selectors.ledger_rows_in(MONTH, MONTH_END)
        ledger_cost = selectors.ledger_cost(MONTH, MONTH_END)
        connection.close()
        rss_before = _rss_mb()
        cpu_before = time.process_time()
        began = time.perf_counter()
        totals = exports.focus_write(start=MONTH, end=MONTH_END, fmt=fmt, out=out)
        seconds = time.perf_counter() - began
        result = {
            "format": fmt,
            "period": f"{MONTH} to {MONTH_END}",
            "seconds": seconds,
            "cpu_seconds": time.process_time() - cpu_before,
            "load_average": os.getloadavg()[0],
            "peak_rss_mb": _maxrss_mb(),
            "rss_before_mb": rss_before,
            "ledger_rows": totals.ledger_rows,
            "focus_rows": totals.rows,
            "unpriced_rows": totals.unpriced_rows,
            "bytes": out.stat().st_size,
            "effective_cost": str(totals.effective_cost.quantize(Decimal("0.000000001"))),
            "ledger_cost": str(Decimal(ledger_cost).quantize(Decimal("0.000000001"))),
        }
        assert totals.ledger_rows == ledger_rows, (totals.ledger_rows, ledger_rows)
        out.unlink()
        self.stdout.write(json.dumps(result))


def _keys(count: int) -> list[int]:
    teams = [
        Team.objects.create(name=f"Bench team {n}", slug=f"bench-{n}", cost_centre=f"CC-{n % 5}") for n in range(20)
    ]
    internal = DataClassification.objects.get_or_create(key="internal", defaults={"level": 2, "label": "Internal"})[0]
    owner = User.objects.filter(email="bench-focus@example.com").first() or User.objects.create(
        email="bench-focus@example.com", full_name="Bench Owner"
    )
    now = datetime.now(UTC)
    requests = KeyRequest.objects.bulk_create(
        KeyRequest(
            requested_by=owner,
            owner=owner,
            team=teams[n % len(teams)],
            kind=KeyKind.PERSONAL,
            purpose="bench",
            data_classification=internal,
            monthly_budget=Decimal("100"),
            status=KeyRequest.Status.APPROVED,
        )
        for n in range(count)
    )
    made = VirtualKey.objects.bulk_create(
        VirtualKey(
            request=request,
            owner=owner,
            team=request.team,
            kind=KeyKind.PERSONAL,
            alias=f"bench-focus-{n}",
            max_budget=Decimal("100"),
            expires_at=now + timedelta(days=90),
            status=VirtualKey.Status.ACTIVE,
            token_hash=f"{n:064x}",
            last4=f"{n % 10000:04d}",
        )
        for n, request in enumerate(requests)
    )
    return [key.pk for key in made]
