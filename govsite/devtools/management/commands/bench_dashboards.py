# ruff: noqa: S608 - the SQL below is built from this module's constants and model table names only.
"""`python manage.py bench_dashboards`: the dashboards at 50 million ledger rows in monthly partitions, against
the raw ledger.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/govsite DEBUG=false SECRET_KEY=bench \\
        python manage.py bench_dashboards [--rows 50000000] [--people 500] [--requests 25]

1. Works in a database of its own on DATABASE_URL's server (DATABASE_URL gives the server and credentials):
   `govsite_dashboards_bench` (--database), created and migrated when missing. No other database is touched;
   bench_load's `<name>_bench` (dropped on each of its runs) is a different one.
2. Fills it once: ~500 people in 25 teams (one of four people), their keys, team budgets, and `--rows`
   ledger rows over the last 12 months (realistic model, tool, tag, error and latency mix; weekday-heavy;
   people starting through the year), made by a seeded generator and streamed in with COPY ... FROM STDIN;
   then DailyRollup with one INSERT ... SELECT ... GROUP BY over the ledger, and the adoption
   rollups with adoption.rollups.rebuild (the same statement the ingest hook runs). A marker row keys the
   data set (rows, people, seed): the next run with the same arguments skips straight to the timings.
   `--regenerate` starts over.
3. Times the server side of the org cost dashboard, a team dashboard and the org adoption page through
   Django's test client logged in as an admin, every figure computed (no cache; median and p95 of --requests
   requests after a warm-up), and the same figures computed by plain GROUP BYs over the raw ledger (--raw-runs
   times), then prints each time and the ratio. Goal: every page at most 150 ms at p95, and at least 20× faster
   than the raw aggregate.
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import UTC, datetime, timedelta

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from adoption import rollups
from adoption.models import KeyUse, LatencyRollup, PersonWeek, TagRollup, TeamModelDay, TeamToolDay
from adoption.selectors import REPEAT_DAYS, TOOLS_DAYS, report_weeks
from budgets import ingest, partitions
from budgets.models import DailyRollup, SpendRecord
from govsite.accounts.models import Team, User
from govsite.devtools import dashboards_bench_data
from keys.models import VirtualKey

P95_GOAL_MS = 150.0
RATIO_GOAL = 20.0
MARKER = "bench_dashboards_marker"
MAINTENANCE_DB = "postgres"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))]


class Command(BaseCommand):
    help = "Fill a bench database with 10M ledger rows and time the dashboards against the raw ledger."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=50_000_000)
        parser.add_argument("--people", type=int, default=500)
        parser.add_argument("--teams", type=int, default=25)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--requests", type=int, default=25, help="Timed requests per page (at least 20).")
        parser.add_argument("--raw-runs", type=int, default=3, help="Runs of each raw GROUP BY set.")
        parser.add_argument("--database", default="govsite_dashboards_bench")
        parser.add_argument("--regenerate", action="store_true", help="Drop the bench database and fill it again.")
        parser.add_argument(
            "--rebuild-rollups", action="store_true", help="Rebuild the adoption rollups of the existing data set."
        )
        parser.add_argument("--check", action="store_true", help="Exit non-zero when a goal is missed.")

    # --- the bench database ----------------------------------------------------------------------------------

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_dashboards needs PostgreSQL: set DATABASE_URL.")
        name = options["database"]
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise CommandError("--database must be a plain lower-case PostgreSQL name.")
        home = connection.settings_dict["NAME"]
        if name == home:
            raise CommandError("--database must not be the database DATABASE_URL names: the bench fills it.")
        if options["requests"] < 20:
            raise CommandError("--requests must be at least 20.")
        self.options = options
        self.home = home
        self._use(MAINTENANCE_DB)  # creating and dropping databases happens from the server's own database
        self._prepare_database(name)
        try:
            self._run()
        finally:
            self._use(home)

    def _use(self, name: str) -> None:
        for conn in connections.all(initialized_only=True):
            conn.close()
        connection.settings_dict["NAME"] = name

    def _exists(self, name: str) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return cursor.fetchone() is not None

    def _prepare_database(self, name: str) -> None:
        wanted = (self.options["rows"], self.options["people"], self.options["teams"], self.options["seed"])
        if self._exists(name) and not self.options["regenerate"]:
            self._use(name)
            marker = self._marker()
            if marker and tuple(marker[:4]) == wanted and marker[6] == dashboards_bench_data.GENERATOR:
                self.stdout.write(
                    f"reusing {name}: {marker[0]:,} ledger rows generated in {marker[4]:.0f} s, "
                    f"rollups built in {marker[5]:.0f} s"
                )
                call_command("migrate", verbosity=0)
                self.fresh = False
                return
            self._use(MAINTENANCE_DB)
        if self._exists(name):
            self.stdout.write(f"dropping {name} (its data does not match the arguments, or --regenerate)")
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        self._use(name)
        self.stdout.write(f"created {name}; migrating ...")
        call_command("migrate", verbosity=0)
        self.fresh = True

    def _marker(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [MARKER])
            if cursor.fetchone()[0] is None:
                return None
            cursor.execute(f"SELECT * FROM {MARKER}")
            row = dict(zip([column.name for column in cursor.description], cursor.fetchone(), strict=True))
            names = ("rows", "people", "teams", "seed", "generate_seconds", "rollup_seconds", "generator")
            return tuple(row.get(name) for name in names)  # a marker from an older generator has no `generator`

    # --- the run ---------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        if not self.fresh and (self.options["rebuild_rollups"] or not PersonWeek.objects.exists()):
            started = time.monotonic()
            self._adoption_rollups()
            self.stdout.write(f"adoption rollups rebuilt in {time.monotonic() - started:.0f} s")
        if self.fresh:
            started = time.monotonic()
            plans = dashboards_bench_data.create_org(
                seed=self.options["seed"],
                people=self.options["people"],
                team_count=self.options["teams"],
                write=self.stdout.write,
            )
            # Monthly partitions for the year of rows (budgets.partitions), so none lands in the default one.
            current = partitions.Month.of(timezone.now())
            for offset in range(-13, 2):
                partitions.ledger_partition_create(current.shifted(offset))
            dashboards_bench_data.copy_ledger(
                plans, rows=self.options["rows"], seed=self.options["seed"], write=self.stdout.write
            )
            generated = time.monotonic() - started
            started = time.monotonic()
            self._rollups()
            rolled = time.monotonic() - started
            with connection.cursor() as cursor:
                cursor.execute(
                    f"CREATE TABLE {MARKER} (rows bigint, people int, teams int, seed int, generator text, "
                    "generate_seconds float8, rollup_seconds float8, created_at timestamptz DEFAULT now())"
                )
                cursor.execute(
                    f"INSERT INTO {MARKER} VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        self.options["rows"],
                        self.options["people"],
                        self.options["teams"],
                        self.options["seed"],
                        dashboards_bench_data.GENERATOR,
                        generated,
                        rolled,
                    ],
                )
            self.stdout.write(f"generation: {generated:.0f} s for the org and the ledger, {rolled:.0f} s for rollups")
        self._sizes()
        self._measure()

    def _sizes(self) -> None:
        with connection.cursor() as cursor:
            for model in (
                SpendRecord,
                DailyRollup,
                TeamModelDay,
                TeamToolDay,
                PersonWeek,
                KeyUse,
                TagRollup,
                LatencyRollup,
            ):
                table = model._meta.db_table
                # A partitioned table's own reltuples is 0: its partitions' are summed.
                cursor.execute(
                    "SELECT COALESCE(sum(GREATEST(reltuples, 0)), 0)::bigint FROM pg_class WHERE oid = to_regclass(%s)"
                    " OR oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%s))",
                    [table, table],
                )
                self.stdout.write(f"  {table:<28} ~{cursor.fetchone()[0]:>12,} rows")

    def _rollups(self) -> None:
        columns = ", ".join(DailyRollup.DIMENSIONS + DailyRollup.COUNTERS)
        with connection.cursor() as cursor:
            self.stdout.write("daily rollups: one INSERT ... SELECT ... GROUP BY over the ledger ...")
            started = time.monotonic()
            cursor.execute("SET work_mem = '256MB'")
            cursor.execute(
                f"INSERT INTO {DailyRollup._meta.db_table} ({columns}) "
                + ingest.ROLLUP_SELECT.format(source=SpendRecord._meta.db_table)
            )
            self.stdout.write(f"  {time.monotonic() - started:.0f} s")
            cursor.execute("RESET work_mem")
        self._adoption_rollups()

    def _adoption_rollups(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT min(time), max(time) FROM {SpendRecord._meta.db_table}")
            first, last = cursor.fetchone()
        self.stdout.write("adoption rollups: adoption.rollups.rebuild over the whole ledger ...")
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("SET work_mem = '256MB'")
        rollups.rebuild(first.astimezone(UTC).date(), last.astimezone(UTC).date())
        self.stdout.write(f"  {time.monotonic() - started:.0f} s")
        with connection.cursor() as cursor:
            cursor.execute("RESET work_mem")
            cursor.execute("VACUUM ANALYZE")  # as autovacuum would soon: visibility map and statistics

    # --- timings -----------------------------------------------------------------------------------------------------

    def _measure(self) -> None:
        admin = User.objects.get(email="bench-admin@bench.govsite.local")
        teams = list(Team.objects.order_by("name"))
        team = sorted(teams, key=lambda t: t.memberships.count())[len(teams) // 2]
        today = timezone.now().date()
        start = today - timedelta(days=29)
        pages = [
            ("org cost dashboard", "/dashboards/?period=30d", self._raw_org, {"start": start, "end": today}),
            (
                f"team dashboard ({team.name})",
                f"/dashboards/teams/{team.slug}/?period=30d",
                self._raw_team,
                {"start": start, "end": today, "team": team.pk},
            ),
            ("adoption page", "/adoption/", self._raw_adoption, {"as_of": today}),
        ]
        results = []
        # Every page computes its figures (FIGURES_CACHE_SECONDS=0): what is timed is the rollups' cost, not the
        # figures kept from the previous request (budgets/generation.py).
        with override_settings(
            DEBUG=False, ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False, FIGURES_CACHE_SECONDS=0
        ):
            client = Client()
            client.force_login(admin)
            for label, url, raw, params in pages:
                for _ in range(3):
                    response = client.get(url)
                    if response.status_code != 200:
                        raise CommandError(f"{url} answered {response.status_code}")
                times = []
                for _ in range(self.options["requests"]):
                    began = time.perf_counter()
                    response = client.get(url)
                    times.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200
                raw_times = []
                for _ in range(self.options["raw_runs"]):
                    began = time.perf_counter()
                    raw(**params)
                    raw_times.append((time.perf_counter() - began) * 1000)
                results.append((label, url, times, raw_times))
                self.stdout.write(
                    f"{label}: p50 {statistics.median(times):.0f} ms, p95 {_pct(times, 0.95):.0f} ms; "
                    f"raw GROUP BY median {statistics.median(raw_times):.0f} ms"
                )
        self._report(results)

    def _report(self, results) -> None:
        self.stdout.write("")
        self.stdout.write(
            f"{'page':<34} {'p50 ms':>8} {'p95 ms':>8} {'raw p50 ms':>11} {'raw max ms':>11} {'ratio':>8}  goal"
        )
        missed = []
        for label, _url, times, raw_times in results:
            p50, p95 = statistics.median(times), _pct(times, 0.95)
            raw50 = statistics.median(raw_times)
            ratio = raw50 / p95
            ok = p95 <= P95_GOAL_MS and ratio >= RATIO_GOAL
            if not ok:
                missed.append(label)
            self.stdout.write(
                f"{label:<34} {p50:>8.1f} {p95:>8.1f} {raw50:>11.0f} {max(raw_times):>11.0f} {ratio:>7.1f}×  "
                f"{'met' if ok else 'MISSED'}"
            )
        self.stdout.write(
            f"({self.options['requests']} requests per page through the test client as an admin; ratio = raw median "
            f"÷ page p95; goals: p95 ≤ {P95_GOAL_MS:.0f} ms and ≥ {RATIO_GOAL:.0f}×)"
        )
        if missed and self.options["check"]:
            raise CommandError(f"goal missed: {', '.join(missed)}")

    # --- the same figures from the raw ledger ----------------------------------------------------------------------

    def _fetch(self, statements: list[tuple[str, list]]) -> None:
        with connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
                cursor.fetchall()

    def _window(self, start, end) -> list:
        since = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
        return [since, since + timedelta(days=(end - start).days + 1)]

    def _cost_statements(self, start, end, team: int | None) -> list[tuple[str, list]]:
        ledger = SpendRecord._meta.db_table
        where = "time >= %s AND time < %s" + (" AND team_id = %s" if team else "")
        params = self._window(start, end) + ([team] if team else [])
        sums = (
            "count(*), sum(prompt_tokens + completion_tokens), sum(cost), "
            "count(*) FILTER (WHERE status = 'failure' OR error_type <> ''), "
            "count(*) FILTER (WHERE cost_source = 'unpriced'), count(*) FILTER (WHERE cost_source = 'flat_rate'), "
            "count(*) FILTER (WHERE error_type = 'rate_limit'), count(*) FILTER (WHERE error_type = 'budget_exceeded')"
        )
        group = "COALESCE(NULLIF(model_group, ''), model)"
        month = timezone.now().date().replace(day=1)
        statements = [
            (f"SELECT {sums} FROM {ledger} WHERE {where}", params),
            (f"SELECT (time AT TIME ZONE 'UTC')::date, {'team_id' if not team else group}, sum(cost) "
             f"FROM {ledger} WHERE {where} GROUP BY 1, 2", params),
            (f"SELECT {group}, {sums} FROM {ledger} WHERE {where} GROUP BY 1", params),
            (f"SELECT client_tool, {sums} FROM {ledger} WHERE {where} GROUP BY 1", params),
            (f"SELECT key_id, token_hash, team_id, {sums} FROM {ledger} WHERE {where} GROUP BY 1, 2, 3 "
             "HAVING count(*) FILTER (WHERE error_type IN ('rate_limit', 'budget_exceeded')) > 0", params),
            (f"SELECT {group}, count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), "
             "percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) "
             f"FROM {ledger} WHERE time >= %s AND time < %s AND latency_ms IS NOT NULL AND status <> 'failure' "
             "AND error_type = '' GROUP BY 1", params[:2]),
            (f"SELECT lower(split_part(tag, ':', 1)), substr(tag, strpos(tag, ':') + 1), count(*), sum(cost) "
             f"FROM {ledger}, jsonb_array_elements_text(request_tags) AS tag WHERE {where} "
             "AND lower(left(tag, 11)) <> 'user-agent:' GROUP BY 1, 2", params),
            (f"SELECT team_id, (time AT TIME ZONE 'UTC')::date, sum(cost) FROM {ledger} "
             f"WHERE time >= %s{' AND team_id = %s' if team else ''} GROUP BY 1, 2",
             [datetime.combine(month, datetime.min.time(), tzinfo=UTC)] + ([team] if team else [])),
        ]  # fmt: skip
        per = "user_id" if team else "team_id, count(DISTINCT user_id)"
        statements.append((f"SELECT {per}, {sums} FROM {ledger} WHERE {where} GROUP BY 1", params))
        return statements

    def _raw_org(self, *, start, end) -> None:
        self._fetch(self._cost_statements(start, end, None))

    def _raw_team(self, *, start, end, team) -> None:
        self._fetch(self._cost_statements(start, end, team))

    def _raw_adoption(self, *, as_of) -> None:
        ledger, keys = SpendRecord._meta.db_table, VirtualKey._meta.db_table
        weeks = report_weeks(as_of)
        since = datetime.combine(weeks[0].start - timedelta(weeks=1), datetime.min.time(), tzinfo=UTC)
        until = datetime.combine(weeks[-1].end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        personal = f"JOIN {keys} k ON k.id = l.key_id AND k.kind = 'personal'"
        self._fetch(
            [
                (f"SELECT l.team_id, l.user_id, date_trunc('week', l.time AT TIME ZONE 'UTC'), "
                 "count(DISTINCT (l.time AT TIME ZONE 'UTC')::date) "
                 f"FROM {ledger} l {personal} WHERE l.time >= %s AND l.time < %s GROUP BY 1, 2, 3", [since, until]),
                (f"SELECT l.team_id, l.user_id, min(l.time) FROM {ledger} l {personal} GROUP BY 1, 2", []),
                (f"SELECT l.user_id, count(DISTINCT (l.time AT TIME ZONE 'UTC')::date) FROM {ledger} l {personal} "
                 "WHERE l.time >= %s AND l.time < %s GROUP BY 1", [until - timedelta(days=REPEAT_DAYS), until]),
                (f"SELECT l.team_id, l.user_id, l.client_tool FROM {ledger} l {personal} "
                 "WHERE l.time >= %s AND l.time < %s GROUP BY 1, 2, 3", [until - timedelta(days=TOOLS_DAYS), until]),
                (f"SELECT key_id, min(time), max(time) FROM {ledger} WHERE time < %s GROUP BY 1", [until]),
            ]
        )  # fmt: skip
