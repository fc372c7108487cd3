"""`python manage.py bench_provision`: keys provisioned through real `rqworker` processes against the sandbox.

Everything runs on loopback and stops by itself:

1. a bench database next to DATABASE_URL's (`<name>_provision_bench`): dropped, created, migrated; the sandbox
   gateway as its own process (its own SQLite file); the RQ queue `default` on REDIS_URL emptied;
2. for each worker count in `--workers` (default 1 and 2): that many `manage.py rqworker default` processes
   (the worker class settings.RQ names: govsite.worker.PreloadedWorker, or `--worker-class`), then, inside
   the bench database (this command run again with `--phase`, so it reads the bench's settings):
   - a rollout of `--keys` people (default 500) to a fresh team, decided by an admin: the time from the
     decision (its commit) to the last key active at the gateway, the rollout's one team-and-users sync, and
     keys per second per worker;
   - `--singles` single key requests (default 20), each approved and waited for before the next: the time
     from the approval to the key active (p50, p95, max);
3. with `--compare-plain N` (default 5), N single keys through rq's plain `Worker` (a fresh child imports
   litellm for each job), the figure the preloading worker replaces;
4. prints the figures; `--check` exits non-zero when a goal is missed (>= 20 keys/s per worker, single-key
   p95 <= 1 s). Drops the database unless `--keep-db`.

Times come from the database's own timestamps (the decision's `decided_at`, each key's `provisioned_at`), so
the polling that waits for the end does not blur them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from govsite.devtools import processes

STARTUP_TIMEOUT = 90.0


class Command(BaseCommand):
    help = "Provision a rollout of 500 keys (and single keys) through real rqworker processes against the sandbox."

    def add_arguments(self, parser):
        parser.add_argument("--keys", type=int, default=500, help="people in the rollout, a key each (default 500)")
        parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated (default 1,2)")
        parser.add_argument("--singles", type=int, default=20, help="single key requests timed one by one")
        parser.add_argument(
            "--compare-plain", type=int, default=5, help="single keys through rq's plain Worker (0: skip)"
        )
        parser.add_argument("--worker-class", default="", help="RQ worker class (default: settings.RQ's)")
        parser.add_argument("--keys-per-second-goal", type=float, default=20.0)
        parser.add_argument("--p95-goal", type=float, default=1.0, help="seconds (default 1)")
        parser.add_argument("--check", action="store_true", help="exit non-zero when a goal is missed")
        parser.add_argument("--keep-db", action="store_true")
        parser.add_argument("--database-url", default="", help="default: DATABASE_URL's server, <name>_provision_bench")
        parser.add_argument("--timeout", type=float, default=900, help="seconds a phase may take")
        # Internal: the command runs itself inside the bench database for each phase.
        parser.add_argument("--phase", default="", help=argparse.SUPPRESS)
        parser.add_argument("--out", default="", help=argparse.SUPPRESS)
        parser.add_argument("--tag", default="", help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        if options["phase"]:
            from govsite.devtools.provision_bench import run_phase

            result = run_phase(
                options["phase"], keys=options["keys"], count=options["singles"], tag=options["tag"],
                timeout=options["timeout"],
            )  # fmt: skip
            Path(options["out"]).write_text(json.dumps(result))
            return
        redis_url = os.environ.get("REDIS_URL", "")
        if not redis_url:
            raise CommandError("bench_provision runs real rqworker processes: set REDIS_URL")
        counts = [int(n) for n in options["workers"].split(",") if n.strip()]
        db_url = options["database_url"] or self._bench_url(os.environ.get("DATABASE_URL", ""))
        workdir = Path(tempfile.mkdtemp(prefix="govsite-provision-bench-"))
        sandbox = None
        results: list[tuple[str, int, dict]] = []
        try:
            env = self._env(db_url, workdir, redis_url)
            processes.recreate_database(dj_database_url.parse(db_url))
            self.stdout.write(f"bench database {urlsplit(db_url).path.lstrip('/')}: migrate")
            self._manage(env, "migrate", "--noinput")
            sandbox = self._sandbox(env, workdir)
            self._manage(env, "bench_provision", "--phase", "setup", "--out", str(workdir / "setup.json"))
            cpu = os.cpu_count()
            load = os.getloadavg()[0]
            self.stdout.write(f"machine: {cpu} cores, load average {load:.2f} at the start")
            label = options["worker_class"] or settings.RQ.get("WORKER_CLASS", "rq.Worker")
            for n in counts:
                with self._workers(env, n, options["worker_class"], workdir, redis_url) as workers:
                    for phase in ("rollout", "singles"):
                        result = self._measured(env, workdir, phase, options, f"w{n}", workers, sandbox)
                        results.append((label, n, result))
            if options["compare_plain"]:
                with self._workers(env, 1, "rq.worker.Worker", workdir, redis_url) as workers:
                    plain = {**options, "singles": options["compare_plain"]}
                    result = self._measured(env, workdir, "singles", plain, "plain", workers, sandbox)
                    results.append(("rq.worker.Worker (plain)", 1, result))
        finally:
            processes.stop(sandbox)
            if not options["keep_db"]:
                with contextlib.suppress(Exception):
                    processes.recreate_database(dj_database_url.parse(db_url), drop_only=True)
            shutil.rmtree(workdir, ignore_errors=True)
        if not self._report(results, options) and options["check"]:
            raise CommandError("a goal was missed")

    # --- pieces ---------------------------------------------------------------------------------------------

    def _bench_url(self, url: str) -> str:
        if not url.startswith(("postgres://", "postgresql://")):
            raise CommandError("bench_provision runs on PostgreSQL: set DATABASE_URL or pass --database-url")
        parts = urlsplit(url)
        return parts._replace(path=f"{parts.path.rstrip('/')}_provision_bench").geturl()

    def _env(self, db_url: str, workdir: Path, redis_url: str) -> dict[str, str]:
        port = processes.free_port()
        return {
            **os.environ,
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LITELLM_URL": f"http://127.0.0.1:{port}",
            "LITELLM_MASTER_KEY": "sk-bench-master-key",
            "SANDBOX_PORT": str(port),
            "SANDBOX_DB_PATH": str(workdir / "sandbox.sqlite3"),
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LOG_LEVEL": "WARNING",
        }

    def _manage(self, env: dict[str, str], *args: str, timeout: float = 900) -> str:
        result = subprocess.run(  # noqa: S603 - this interpreter and this manage.py
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args],
            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise CommandError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def _sandbox(self, env: dict[str, str], workdir: Path) -> subprocess.Popen:
        with (workdir / "sandbox.log").open("wb") as log:
            process = subprocess.Popen(  # noqa: S603
                [
                    sys.executable, "-m", "govsite.devtools.sandbox", "--port", env["SANDBOX_PORT"],
                    "--db", env["SANDBOX_DB_PATH"], "--master-key", env["LITELLM_MASTER_KEY"],
                ],
                cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            processes.wait_for_http(
                f"{env['LITELLM_URL']}/health/liveliness", process, what="the sandbox gateway", timeout=STARTUP_TIMEOUT
            )
        except RuntimeError as exc:
            processes.stop(process)
            raise CommandError(str(exc)) from exc
        return process

    @contextlib.contextmanager
    def _workers(self, env, count: int, worker_class: str, workdir: Path, redis_url: str):
        import redis
        from rq import Queue, Worker

        conn = redis.Redis.from_url(redis_url)
        Queue("default", connection=conn).empty()
        command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "rqworker", "default"]
        if worker_class:
            command += ["--worker-class", worker_class]
        started = time.monotonic()
        workers = []
        for i in range(count):
            log = (workdir / f"rqworker-{worker_class or 'default'}-{count}-{i}.log").open("ab")
            workers.append(subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=log))  # noqa: S603
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while len([w for w in Worker.all(connection=conn) if w.pid in {p.pid for p in workers}]) < count:
                if time.monotonic() > deadline or any(p.poll() is not None for p in workers):
                    raise CommandError(f"the rq workers did not start:\n{processes.tail(Path(log.name))}")
                time.sleep(0.1)
            self.stdout.write(
                f"{count} rqworker process(es) ({worker_class or settings.RQ.get('WORKER_CLASS', 'rq.Worker')}) "
                f"ready in {time.monotonic() - started:.1f}s"
            )
            yield workers
        finally:
            for process in workers:
                processes.stop(process)

    def _measured(self, env, workdir, phase, options, tag, workers, sandbox) -> dict:
        """A phase, with the CPU seconds the workers (with their forked children) and the sandbox used in it."""
        before = _cpu_seconds([w.pid for w in workers]), _cpu_seconds([sandbox.pid])
        result = self._phase(env, workdir, phase, options, tag=tag)
        result["worker_cpu"] = _cpu_seconds([w.pid for w in workers]) - before[0]
        result["sandbox_cpu"] = _cpu_seconds([sandbox.pid]) - before[1]
        return result

    def _phase(self, env, workdir: Path, phase: str, options: dict, *, tag: str) -> dict:
        out = workdir / f"{phase}-{tag}.json"
        self._manage(
            env, "bench_provision", "--phase", phase, "--out", str(out), "--keys", str(options["keys"]),
            "--singles", str(options["singles"]), "--tag", tag, "--timeout", str(options["timeout"]),
            timeout=options["timeout"] + 120,
        )  # fmt: skip
        result = json.loads(out.read_text())
        result["phase"] = phase
        return result

    def _report(self, results: list[tuple[str, int, dict]], options: dict) -> bool:
        ok = True
        self.stdout.write("")
        for worker, count, r in results:
            if r["phase"] == "rollout":
                per_worker = r["keys"] / r["decision_to_last_active"] / count
                met = per_worker >= options["keys_per_second_goal"]
                ok &= met
                line = (
                    f"rollout of {r['keys']} keys, {count} worker(s): decision to last key active "
                    f"{r['decision_to_last_active']:.2f}s (approval transaction {r['approve_seconds']:.2f}s, "
                    f"team and {r['keys']} users synced in {r['sync_seconds']:.2f}s, keys {r['keys_seconds']:.2f}s); "
                    f"{r['keys'] / r['decision_to_last_active']:.1f} keys/s, {per_worker:.1f} keys/s per worker "
                    f"(keys phase alone: {r['keys'] / max(r['keys_seconds'], 1e-9) / count:.1f}); each key made once "
                    f"at the gateway: {r['gateway_keys']} of {r['keys']}"
                )
            else:
                lat = sorted(r["latencies"])
                p95 = lat[max(0, round(0.95 * len(lat)) - 1)]
                met = p95 <= options["p95_goal"] or worker != "preloaded"
                ok &= met
                line = (
                    f"single keys, {worker}, {count} worker(s): approval to key active over {len(lat)} keys: "
                    f"p50 {statistics.median(lat):.3f}s, p95 {p95:.3f}s, max {lat[-1]:.3f}s"
                )
            self.stdout.write(self.style.SUCCESS(line) if met else self.style.ERROR(line))
            per_key = 1000 / max(r["keys"], 1)
            self.stdout.write(
                f"    CPU in that phase: workers {r['worker_cpu']:.1f}s ({r['worker_cpu'] * per_key:.1f} ms a key, "
                f"i.e. {r['keys'] / max(r['worker_cpu'], 1e-9):.0f} keys/s for a worker with a core of its own), "
                f"sandbox gateway {r['sandbox_cpu']:.1f}s ({r['sandbox_cpu'] * per_key:.1f} ms a key)"
            )
        verdict = (
            f"goals (>= {options['keys_per_second_goal']:g} keys/s per worker, single key p95 <= "
            f"{options['p95_goal']:g}s): {'met' if ok else 'MISSED'}; load average now {os.getloadavg()[0]:.2f}"
        )
        self.stdout.write(self.style.SUCCESS(verdict) if ok else self.style.ERROR(verdict))
        return ok


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of processes and their waited-for children (a forking worker's jobs), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks
