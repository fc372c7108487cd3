"""`python manage.py bench_load`: the busiest pages under 100 concurrent clients, on PostgreSQL, for a minute.

Everything runs on loopback and stops by itself:

1. a bench database next to DATABASE_URL's (`<name>_bench`): dropped, created, migrated, `seed_demo`, then
   filled like a mid-size org by this command with `--prepare` inside that database (bench_data.py):
   `--people` more people across the teams, each with a key provisioned at the sandbox gateway (started for
   the run), `--spend-rows` spend-log rows over the last `--spend-days` days booked through the ledger's
   ingest (which keeps the dashboards' rollups), `--pending` key requests waiting in each team's queue, and
   one login session per client;
2. `--processes` gunicorn processes (default 2) of `--workers` workers each (default 4) sharing one port
   (SO_REUSEPORT, as two machines behind a balancer), with the production settings (DEBUG off); with
   `--replica` (a server URL; default GOVSITE_BENCH_REPLICA_URL) the dashboards read the bench database on
   that streaming replica (DATABASE_REPLICA_URL), which receives it from the primary;
3. locust through its library API, headless, in a process of its own (govsite/devtools/bench_clients.py):
   approvers load the approval queue (/approvals/), approvers and admins each team's cost dashboard
   (/dashboards/teams/<slug>/) and their "Needs me" inbox (/inbox/), members and approvers the key list with
   its spend columns (/keys/?scope=mine, ?scope=team), members the REST API's list of their key requests
   (/api/v1/key-requests/);
4. prints requests/s, p50/p95/p99 and errors per endpoint and overall, stops gunicorn and the sandbox, and
   drops the database (unless --keep-db). `--check` exits non-zero when the goal is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import httpx
import psutil
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from govsite.devtools import processes
from govsite.devtools.bench_data import prepare

STARTUP_TIMEOUT = 90.0
# The clients start evenly over this many seconds (people arrive, not all in one millisecond); the measured
# minute begins once all of them have started (govsite/devtools/bench_clients.py).
RAMP_SECONDS = 10.0


def _cpu_seconds(servers: list[subprocess.Popen]) -> dict[str, float]:
    """CPU seconds used so far by the web processes (with their workers), the PostgreSQL server's processes
    and this command's finished children (the load generator, once it has exited)."""

    def used(process: psutil.Process) -> float:
        # With the finished children it reaped: the PostgreSQL server's backends that ended during the load.
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            return times.user + times.system + times.children_user + times.children_system
        return 0.0

    web = 0.0
    for server in servers:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(server.pid)
            web += used(parent) + sum(used(child) for child in parent.children(recursive=True))
    postgres = sum(used(p) for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"web": web, "postgres": postgres, "load generator": children.ru_utime + children.ru_stime}


def _wait_for(url: str, process: subprocess.Popen, what: str) -> None:
    try:
        processes.wait_for_http(url, process, what=what, timeout=STARTUP_TIMEOUT)
    except RuntimeError as exc:
        raise CommandError(str(exc)) from exc


class Command(BaseCommand):
    help = (
        "Load-test the approval queue, the team dashboard, the inbox, the key list and the key-request API: "
        "100 clients, 60 s, gunicorn."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=100, help="concurrent clients (default 100)")
        parser.add_argument("--processes", type=int, default=2, help="gunicorn processes on one port (default 2)")
        parser.add_argument(
            "--replica",
            default=os.environ.get("GOVSITE_BENCH_REPLICA_URL", ""),
            help="PostgreSQL server URL of a streaming replica of DATABASE_URL's server, for the dashboards",
        )
        parser.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
        parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
        parser.add_argument("--people", type=int, default=225, help="people added to the demo org, a key each")
        parser.add_argument("--pending", type=int, default=20, help="key requests pending per team")
        parser.add_argument(
            "--spend-rows", type=int, default=150_000, help="gateway spend-log rows booked into the ledger"
        )
        parser.add_argument("--spend-days", type=int, default=90, help="days of traffic those rows cover")
        parser.add_argument(
            "--think",
            default="0.5-1.5",
            help="seconds each client waits between two requests, as MIN-MAX (default 0.5-1.5; 0 for none)",
        )
        parser.add_argument("--p95-goal", type=float, default=150.0, help="milliseconds (default 150)")
        parser.add_argument("--check", action="store_true", help="exit non-zero if there are errors or p95 misses")
        parser.add_argument("--keep-db", action="store_true", help="keep the bench database afterwards")
        parser.add_argument(
            "--reuse-db",
            action="store_true",
            help="load the database kept by an earlier --keep-db run instead of making it again (its clients' "
            "sessions are kept beside it, in var/)",
        )
        parser.add_argument(
            "--database-url",
            default="",
            help="PostgreSQL URL of the bench database (default: DATABASE_URL's server, database <name>_bench)",
        )
        # Internal: bench_load runs itself with this inside the bench database to fill it and write the spec.
        parser.add_argument("--prepare", default="", help=argparse.SUPPRESS)

    # --- the run --------------------------------------------------------------------------------------------

    def handle(self, *args, **options):
        if options["prepare"]:
            spec = prepare(
                people=options["people"],
                pending=options["pending"],
                clients=options["users"],
                spend_rows=options["spend_rows"],
                spend_days=options["spend_days"],
            )
            Path(options["prepare"]).write_text(json.dumps(spec))
            return
        if importlib.util.find_spec("locust") is None:
            raise CommandError("locust is not installed: pip install 'locust>=2.30,<3'")
        think = self._think(options["think"])
        db_url = options["database_url"] or self._bench_url(os.environ.get("DATABASE_URL", ""))
        workdir = Path(tempfile.mkdtemp(prefix="govsite-bench-"))
        running: dict[str, subprocess.Popen] = {}
        kept_spec = Path(settings.VAR_DIR) / f"bench_load-{urlsplit(db_url).path.lstrip('/')}.json"
        try:
            env = self._env(db_url, workdir)
            if options["reuse_db"]:
                if not kept_spec.exists():
                    raise CommandError(f"--reuse-db: no kept bench database ({kept_spec} is missing); run --keep-db")
                spec = json.loads(kept_spec.read_text())
                env["SECRET_KEY"] = spec["secret_key"]  # the kept sessions were signed with it
                self.stdout.write(f"bench database {urlsplit(db_url).path.lstrip('/')}: reused, migrated")
                self._manage(env, "migrate", "--noinput")  # the code may have migrations the kept copy has not
            else:
                spec = self._fill(db_url, env, workdir, running, options)
                if options["keep_db"]:
                    kept_spec.parent.mkdir(parents=True, exist_ok=True)
                    kept_spec.write_text(json.dumps({**spec, "secret_key": env["SECRET_KEY"]}))
            self._report_ledger(spec["ledger"])
            port = processes.free_port()
            base_url = f"http://127.0.0.1:{port}"
            if options["replica"]:
                name = urlsplit(db_url).path.lstrip("/")
                env["DATABASE_REPLICA_URL"] = f"{options['replica'].rstrip('/')}/{name}"
                self.stdout.write(f"dashboards read the replica: {env['DATABASE_REPLICA_URL']}")
            for n in range(options["processes"]):
                running[f"gunicorn-{n}"] = self._gunicorn(env, port, options["workers"], workdir, n)
                _wait_for(f"{base_url}/healthz", running[f"gunicorn-{n}"], "gunicorn")
            self._warm_up(base_url, spec)
            self.stdout.write(
                f"load: {options['users']} clients starting over {RAMP_SECONDS:g}s, then measured for "
                f"{options['duration']:.0f}s against gunicorn ({options['processes']} x {options['workers']} workers), "
                f"think time {think[0]:g}-{think[1]:g}s"
            )
            servers = [p for name, p in running.items() if name.startswith("gunicorn")]
            before = _cpu_seconds(servers)
            result = self._locust(base_url, spec, workdir, options["users"], options["duration"], think)
            result["cpu"] = {name: after - before.get(name, 0.0) for name, after in _cpu_seconds(servers).items()}
        finally:
            for process in reversed(running.values()):
                processes.stop(process)
            if not (options["keep_db"] or options["reuse_db"]):
                with contextlib.suppress(Exception):
                    self._recreate(db_url, drop_only=True)
            shutil.rmtree(workdir, ignore_errors=True)
        ok = self._report(spec, result, options["p95_goal"])
        if options["check"] and not ok:
            raise CommandError("the goal was missed")

    # --- pieces ---------------------------------------------------------------------------------------------

    def _fill(self, db_url: str, env: dict[str, str], workdir: Path, running: dict, options: dict) -> dict:
        self._recreate(db_url)
        self.stdout.write(f"bench database {urlsplit(db_url).path.lstrip('/')}: migrate, seed_demo")
        self._manage(env, "migrate", "--noinput")
        self._manage(env, "seed_demo")
        running["sandbox"] = self._sandbox(env, workdir)
        self.stdout.write(
            f"filling it: {options['people']} more people with a key each, {options['spend_rows']:,} spend "
            f"rows over {options['spend_days']} days, {options['pending']} pending requests per team, "
            f"{options['users']} sessions"
        )
        spec_path = workdir / "spec.json"
        started = time.monotonic()
        self._manage(
            env, "bench_load", "--prepare", str(spec_path), "--people", str(options["people"]),
            "--pending", str(options["pending"]), "--users", str(options["users"]),
            "--spend-rows", str(options["spend_rows"]), "--spend-days", str(options["spend_days"]), timeout=1800,
        )  # fmt: skip
        self.stdout.write(f"  filled in {time.monotonic() - started:.0f}s")
        return json.loads(spec_path.read_text())

    def _think(self, value: str) -> tuple[float, float]:
        try:
            low, _, high = value.partition("-")
            low_s, high_s = float(low), float(high or low)
        except ValueError as exc:
            raise CommandError(f"--think takes MIN-MAX seconds, e.g. 0.5-1.5, not {value!r}") from exc
        if low_s < 0 or high_s < low_s:
            raise CommandError(f"--think takes MIN-MAX seconds with 0 <= MIN <= MAX, not {value!r}")
        return low_s, high_s

    def _bench_url(self, url: str) -> str:
        if not url.startswith(("postgres://", "postgresql://")):
            raise CommandError(
                "bench_load runs on PostgreSQL: set DATABASE_URL (its server gets a <name>_bench database) "
                "or pass --database-url"
            )
        parts = urlsplit(url)
        return parts._replace(path=f"{parts.path.rstrip('/')}_bench").geturl()

    def _recreate(self, db_url: str, *, drop_only: bool = False) -> None:
        config = dj_database_url.parse(db_url)
        if config["ENGINE"] != "django.db.backends.postgresql":
            raise CommandError("bench_load runs on PostgreSQL")
        processes.recreate_database(config, drop_only=drop_only)

    def _env(self, db_url: str, workdir: Path) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": db_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # The set-up provisions keys in-process; the pages read only. The cache is Redis when set.
            "REDIS_URL": "",
            "LITELLM_URL": "",
            "LITELLM_MASTER_KEY": "sk-bench-master-key",
            "SANDBOX_PORT": str(processes.free_port()),
            "SANDBOX_DB_PATH": str(workdir / "sandbox.sqlite3"),
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LOG_LEVEL": "WARNING",
        }

    def _manage(self, env: dict[str, str], *args: str, timeout: float = 300) -> str:
        result = subprocess.run(  # noqa: S603 - this interpreter and this manage.py
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise CommandError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def _sandbox(self, env: dict[str, str], workdir: Path) -> subprocess.Popen:
        port = env["SANDBOX_PORT"]
        with (workdir / "sandbox.log").open("wb") as log:
            process = subprocess.Popen(  # noqa: S603
                [
                    sys.executable, "-m", "govsite.devtools.sandbox", "--port", port,
                    "--db", env["SANDBOX_DB_PATH"], "--master-key", env["LITELLM_MASTER_KEY"],
                ],
                cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_for(f"http://127.0.0.1:{port}/health/liveliness", process, "the sandbox gateway")
        return process

    def _gunicorn(self, env: dict[str, str], port: int, workers: int, workdir: Path, n: int = 0) -> subprocess.Popen:
        web_env = {**env, "REDIS_URL": os.environ.get("REDIS_URL", "")}
        with (workdir / f"gunicorn-{n}.log").open("wb") as log:
            return subprocess.Popen(  # noqa: S603
                [
                    sys.executable, "-m", "gunicorn", "govsite.wsgi:application", "--reuse-port",
                    "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning",
                ],
                cwd=settings.BASE_DIR, env=web_env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def _warm_up(self, base_url: str, spec: dict) -> None:
        """A few requests per endpoint first, so every worker has loaded its templates, as a live site has."""
        with httpx.Client(base_url=base_url, timeout=30) as client:
            for endpoint in spec["endpoints"].values():
                accept = endpoint.get("accept", "text/html")
                for target in endpoint["clients"][:8]:
                    headers = {"Cookie": f"sessionid={target['session']}", "Accept": accept}
                    response = client.get(target["path"], headers=headers)
                    expect = target.get("expect", endpoint.get("expect", ""))
                    if response.status_code != 200 or expect not in response.text:
                        raise CommandError(
                            f"GET {target['path']} answered {response.status_code} without {expect!r}, not the page"
                        )

    def _locust(self, base_url, spec, workdir, users, duration, think) -> dict:
        spec_path, out_path = workdir / "clients.json", workdir / "result.json"
        spec_path.write_text(json.dumps(spec))
        command = [
            sys.executable, "-m", "govsite.devtools.bench_clients", str(spec_path), str(out_path),
            "--host", base_url, "--users", str(users), "--duration", str(duration),
            "--think-min", str(think[0]), "--think-max", str(think[1]), "--ramp", str(RAMP_SECONDS),
        ]  # fmt: skip
        result = subprocess.run(  # noqa: S603
            command, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=RAMP_SECONDS + duration + 120
        )
        if result.returncode != 0 or not out_path.exists():
            raise CommandError(f"locust failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return json.loads(out_path.read_text())

    def _report_ledger(self, ledger: dict) -> None:
        if ledger["rejected"]:
            raise CommandError(f"the ingest refused {ledger['rejected']} of the generated spend rows")
        costs = ledger["cost_30d_by_team"]
        empty = sorted(slug for slug, cost in costs.items() if Decimal(cost) <= 0)
        if empty:
            raise CommandError(f"teams with no ledger spend in the last 30 days: {', '.join(empty)}")
        figures = ", ".join(f"{slug} ${Decimal(cost):,.2f}" for slug, cost in sorted(costs.items()))
        self.stdout.write(
            f"  ledger: {ledger['rows']:,} rows over {ledger['days']} days on {ledger['keys']} keys, booked through "
            f"the ingest in {ledger['seconds']:.0f}s; last 30 days by team: {figures}"
        )

    def _report(self, spec: dict, result: dict, p95_goal: float) -> bool:
        rows = result["endpoints"]
        self.stdout.write("")
        self.stdout.write(
            f"{'endpoint':<16} {'path':<26} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'p99 ms':>7} {'max ms':>7} {'errors':>6}"
        )
        names = [name for name in spec["endpoints"] if name in rows] + ["overall"]
        for name in names:
            row = rows[name]
            path = spec["endpoints"][name]["path_pattern"] if name in spec["endpoints"] else ""
            self.stdout.write(
                f"{name:<16} {path:<26} {row['requests']:>8} {row['rps']:>7.1f} {row['p50']:>7.0f} "
                f"{row['p95']:>7.0f} {row['p99']:>7.0f} {row['max']:>7.0f} {row['errors']:>6}"
            )
        for name, kinds in result.get("error_kinds", {}).items():
            for kind, count in kinds.items():
                self.stdout.write(self.style.ERROR(f"  {name}: {count} x {kind}"))
        if cpu := result.get("cpu"):
            seconds = result["seconds"]
            shares = ", ".join(f"{name} {used:.0f} s ({used / seconds:.2f} cores)" for name, used in cpu.items())
            self.stdout.write(f"CPU during the load ({os.cpu_count()} cores): {shares}")
        overall = rows["overall"]
        ok = overall["errors"] == 0 and all(rows[n]["p95"] <= p95_goal for n in names)
        verdict = (
            f"goal (no errors, p95 <= {p95_goal:.0f} ms for every endpoint): {'met' if ok else 'MISSED'} "
            f"over {result['seconds']:.0f}s with {result['users']} clients"
        )
        self.stdout.write(self.style.SUCCESS(verdict) if ok else self.style.ERROR(verdict))
        return ok
