"""`python manage.py bench_export`: build an evidence bundle over 100,000 audit events and 20,000 keys and
print how long it took and how much memory it needed. Goal: under 60 s and under 300 MB.

It runs in a bench database next to DATABASE_URL's (`govsite_bench_export` on the same server, or
`--database-url`), created and migrated if missing, and filled once with bulk inserts (the audit events
form a valid chain: each hash computed with audit.chain.compute_hash). Then a fresh process builds the
bundle for the last 90 days, as the export job does, and reports:

- wall time of the build;
- peak resident memory of that process (getrusage maxrss) and its resident memory before the build;
- with --tracemalloc, a second build's Python heap peak (tracemalloc slows the build, so it is separate).

The bundle is verified against its manifest afterwards. `--check` exits non-zero when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from audit import evidence_check, services
from audit.chain import GENESIS_HASH, canonical_json, compute_hash
from audit.models import AuditEvent, EvidenceExport
from audit.reports import in_report_order
from budgets.models import DailyRollup
from govsite.accounts.models import Membership, OrgRole, OrgRoleGrant, Team, TeamRole, User
from govsite.devtools import processes
from keys.models import Approval, DataClassification, KeyKind, KeyRequest, VirtualKey

BENCH_DB = "govsite_bench_export"
GOAL_SECONDS = 60.0
GOAL_MB = 300.0
DAYS = 90


def _rss_mb() -> float:
    """Current resident memory of this process (Linux /proc), in MB."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
    except (OSError, ValueError):
        return 0.0


def _maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


class Command(BaseCommand):
    help = "Build an evidence bundle over 100,000 audit events and 20,000 keys; print time and peak memory."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=100_000)
        parser.add_argument("--keys", type=int, default=20_000)
        parser.add_argument("--database-url", default="", help=f"bench database (default: {BENCH_DB} on DATABASE_URL)")
        parser.add_argument("--refill", action="store_true", help="fill the bench database again")
        parser.add_argument("--tracemalloc", action="store_true", help="also measure the Python heap peak")
        parser.add_argument("--check", action="store_true", help="exit non-zero if a goal is missed")
        # Internal: the command runs itself inside the bench database for each phase.
        parser.add_argument("--phase", choices=["fill", "measure"], help=argparse.SUPPRESS)
        parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        if options["phase"] == "fill":
            return self._fill(options["events"], options["keys"], refill=options["refill"])
        if options["phase"] == "measure":
            return self._measure(trace=options["trace"])
        db_url = options["database_url"] or self._bench_url(os.environ.get("DATABASE_URL", ""))
        self._create_if_missing(db_url)
        env = self._env(db_url)
        name = urlsplit(db_url).path.lstrip("/")
        self.stdout.write(f"bench database {name}: migrate")
        self._manage(env, "migrate", "--noinput")
        started = time.monotonic()
        fill_args = ["--events", str(options["events"]), "--keys", str(options["keys"])]
        self.stdout.write(self._manage(env, "bench_export", "--phase", "fill", *fill_args, *(
            ["--refill"] if options["refill"] else []
        )).strip())  # fmt: skip
        self.stdout.write(f"  ready in {time.monotonic() - started:.1f}s")
        result = json.loads(self._manage(env, "bench_export", "--phase", "measure").strip().splitlines()[-1])
        self._report(result)
        ok = result["seconds"] < GOAL_SECONDS and result["peak_rss_mb"] < GOAL_MB and result["verified"]
        if options["tracemalloc"]:
            traced = json.loads(
                self._manage(env, "bench_export", "--phase", "measure", "--trace").strip().splitlines()[-1]
            )
            self.stdout.write(
                f"tracemalloc: Python heap peak {traced['tracemalloc_peak_mb']:.1f} MB during the build "
                f"(that build took {traced['seconds']:.1f}s under tracing)"
            )
        verdict = "met" if ok else "MISSED"
        self.stdout.write(f"goal (< {GOAL_SECONDS:.0f} s, < {GOAL_MB:.0f} MB peak RSS, bundle verifies): {verdict}")
        if options["check"] and not ok:
            raise CommandError("the goal was missed")

    # --- the parent: database, environment, reporting ------------------------------------------------------

    def _bench_url(self, url: str) -> str:
        if not url.startswith(("postgres://", "postgresql://")):
            raise CommandError("bench_export runs on PostgreSQL: set DATABASE_URL or pass --database-url")
        return urlsplit(url)._replace(path=f"/{BENCH_DB}").geturl()

    def _create_if_missing(self, db_url: str) -> None:
        config = dj_database_url.parse(db_url)
        if config["ENGINE"] != "django.db.backends.postgresql":
            raise CommandError("bench_export runs on PostgreSQL")
        if processes.recreate_database(config, keep=True):
            self.stdout.write(f"created database {config['NAME']}")

    def _env(self, db_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": db_url,
            "DB_CONN_MAX_AGE": "0",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-export-only-secret-key-0123456789abcdef",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "localhost",
            "REDIS_URL": "",
            "GOVSITE_VAR_DIR": str(Path(tempfile.gettempdir()) / "govsite-bench-export"),
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
            timeout=1800,
        )
        if result.returncode != 0:
            raise CommandError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def _report(self, r: dict) -> None:
        self.stdout.write(
            f"bundle over {r['events']:,} audit events and {r['keys']:,} keys ({r['period']}):\n"
            f"  time        {r['seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU in the build process "
            f"(load average {r['load_average']:.1f})\n"
            f"  peak RSS    {r['peak_rss_mb']:.0f} MB (getrusage maxrss of the build process; "
            f"{r['rss_before_mb']:.0f} MB before the build)\n"
            f"  bundle      {r['bytes'] / 1024 / 1024:.1f} MB, {r['files']} files, verified: {r['verified']}\n"
            f"  rows        " + ", ".join(f"{name} {rows:,}" for name, rows in r["row_counts"].items())
        )

    # --- phase 1: fill (inside the bench database) ----------------------------------------------------------

    def _fill(self, events: int, keys: int, *, refill: bool) -> None:
        seeded = AuditEvent.objects.filter(request_id__startswith="bench-").count()  # not the exports' own events
        if not refill and seeded == events and VirtualKey.objects.count() == keys:
            self.stdout.write(f"bench data already there: {events:,} audit events, {keys:,} keys")
            return
        started = time.monotonic()
        with transaction.atomic():
            _truncate()
            made = _generate(events, keys)
        self.stdout.write(
            f"filled in {time.monotonic() - started:.1f}s: {made['events']:,} audit events (one valid chain), "
            f"{made['keys']:,} keys with requests and approvals, {made['users']:,} people, {made['teams']} teams, "
            f"{made['rollups']:,} rollups"
        )

    # --- phase 2: measure (a fresh process inside the bench database) -----------------------------------------

    def _measure(self, *, trace: bool) -> None:
        today = datetime.now(UTC).date()
        start = today - timedelta(days=DAYS)
        out_dir = Path(tempfile.mkdtemp(prefix="govsite-bench-export-"))
        out = out_dir / "bench-evidence.zip"
        export = services.evidence_export_create_for_cli(
            label="manage.py bench_export", period_start=start, period_end=today, sample_size=40, sample_seed="bench"
        )
        connection.close()  # the build opens its own connection, as the worker's job would
        rss_before = _rss_mb()
        if trace:
            tracemalloc.start()
        cpu_before = time.process_time()
        began = time.perf_counter()
        services.evidence_export_build(export_id=export.pk, out=out)
        seconds = time.perf_counter() - began
        cpu = time.process_time() - cpu_before
        peak_traced = tracemalloc.get_traced_memory()[1] / 1024 / 1024 if trace else None
        if trace:
            tracemalloc.stop()
        peak_rss = _maxrss_mb()
        export = EvidenceExport.objects.get(pk=export.pk)
        check = evidence_check.verify_bundle(out)
        result = {
            "events": AuditEvent.objects.count(),
            "keys": VirtualKey.objects.count(),
            "period": f"{start} to {today}",
            "seconds": seconds,
            "cpu_seconds": cpu,
            "load_average": os.getloadavg()[0],
            "peak_rss_mb": peak_rss,
            "rss_before_mb": rss_before,
            "tracemalloc_peak_mb": peak_traced,
            "bytes": out.stat().st_size,
            "files": check.files,
            "verified": check.ok,
            "row_counts": dict(in_report_order(export.row_counts)),
        }
        out.unlink()
        out_dir.rmdir()
        self.stdout.write(json.dumps(result))


# --- the data -------------------------------------------------------------------------------------------------

_TABLES = (
    "audit_auditevent",
    "audit_evidenceexport",
    "audit_evidencesample",
    "audit_accessreviewdecision",
    "audit_accessreviewitem",
    "audit_accessreview_teams",
    "audit_accessreview",
    "budgets_dailyrollup",
    "keys_gatewaycommand",
    "keys_approval",
    "keys_virtualkey",
    "keys_keyrequest_requested_models",
    "keys_keyrequest",
    "accounts_membership",
    "accounts_orgrolegrant",
    "accounts_usersession",
    "accounts_user",
    "accounts_team",
)


def _truncate() -> None:
    with connection.cursor() as cursor:
        # The audit table refuses TRUNCATE; this is the bench's own database, emptied before a refill.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE")  # noqa: S608 - constants


def _generate(event_count: int, key_count: int) -> dict:
    unusable = make_password(None)  # people sign in through SSO: no password
    rng = random.Random(7)
    now = datetime.now(UTC).replace(microsecond=0)
    begin = now - timedelta(days=DAYS - 1)
    internal = DataClassification.objects.get_or_create(key="internal", defaults={"level": 2, "label": "Internal"})[0]
    teams = Team.objects.bulk_create(
        [Team(name=f"Bench team {n:02d}", slug=f"bench-team-{n:02d}", created_at=begin) for n in range(50)]
    )
    people = max(2000, key_count // 10)
    users = User.objects.bulk_create(
        [
            User(email=f"person{n:05d}@bench.example", full_name=f"Person {n}", password=unusable, date_joined=begin)
            for n in range(people)
        ],
        batch_size=5000,
    )
    admin = User.objects.create(email="admin@bench.example", full_name="Bench Admin", password=unusable)
    OrgRoleGrant.objects.create(user=admin, role=OrgRole.ADMIN)
    approvers = {team.pk: users[i] for i, team in enumerate(teams)}
    team_of = {user.pk: teams[n % len(teams)] for n, user in enumerate(users)}
    Membership.objects.bulk_create(
        [
            Membership(
                user=user,
                team=team_of[user.pk],
                role=TeamRole.APPROVER if approvers[team_of[user.pk].pk] == user else TeamRole.MEMBER,
            )
            for user in users
        ],
        batch_size=5000,
    )
    members = [user for user in users if approvers[team_of[user.pk].pk] != user]
    # One person in a hundred left during the period; their personal keys were revoked by the next job run.
    leavers = {
        user.pk: now - timedelta(days=rng.randrange(1, DAYS - 10), minutes=rng.randrange(60)) for user in members[::100]
    }
    User.objects.filter(pk__in=list(leavers)).update(is_active=False)
    for user_id, left_at in leavers.items():
        User.objects.filter(pk=user_id).update(deactivated_at=left_at)
    stayers = [user for user in members if user.pk not in leavers]

    # Keys: one request and one approval each, created in order over the period.
    step = (now - begin) / (key_count + 1)
    plan = []
    for n in range(key_count):
        owner = members[rng.randrange(len(members))]
        created = begin + step * (n + 1)
        if owner.pk in leavers and created >= leavers[owner.pk]:
            owner = stayers[rng.randrange(len(stayers))]
        plan.append((owner, team_of[owner.pk], created))
    requests = KeyRequest.objects.bulk_create(
        [
            KeyRequest(
                requested_by=owner,
                owner=owner,
                team=team,
                purpose=f"Coding agent for ticket ENG-{n}",
                data_classification=internal,
                monthly_budget=Decimal("50"),
                status=KeyRequest.Status.APPROVED,
                decided_at=created - timedelta(seconds=30),
                created_at=created - timedelta(hours=2),
            )
            for n, (owner, team, created) in enumerate(plan)
        ],
        batch_size=5000,
    )
    Approval.objects.bulk_create(
        [
            Approval(
                request=request,
                approver=approvers[team.pk],
                decision=Approval.Decision.APPROVE,
                created_at=created - timedelta(seconds=31),
            )
            for request, (_, team, created) in zip(requests, plan, strict=True)
        ],
        batch_size=5000,
    )
    fates = []
    key_rows = []
    for n, (request, (owner, team, created)) in enumerate(zip(requests, plan, strict=True)):
        fate = rng.random()
        status = VirtualKey.Status.ACTIVE
        revoked_at = revoke_requested_at = None
        if owner.pk in leavers and n % 10:
            status = VirtualKey.Status.REVOKED
            revoke_requested_at = leavers[owner.pk] + timedelta(seconds=rng.randrange(30, 90))
            revoked_at = revoke_requested_at + timedelta(seconds=2)
        elif fate < 0.10:
            status = VirtualKey.Status.REVOKED
            revoke_requested_at = min(now, created + timedelta(days=rng.randrange(1, 30)))
            revoked_at = revoke_requested_at + timedelta(seconds=2)
        fates.append((status, revoke_requested_at, revoked_at))
        key_rows.append(
            VirtualKey(
                request=request,
                owner=owner,
                team=team,
                kind=KeyKind.PERSONAL if n % 10 else KeyKind.SERVICE,
                service_name="" if n % 10 else f"service-{n}",
                alias=f"govsite-r{request.pk}-k1",
                allowed_models=["gpt-4o", "claude-sonnet-4-5"],
                max_budget=Decimal("50"),
                expires_at=created + timedelta(days=90),
                status=status,
                token_hash=f"{n:064x}",
                last4=f"{n % 10000:04d}",
                created_at=created,
                provisioned_at=created + timedelta(seconds=1),
                revoke_requested_at=revoke_requested_at,
                revoked_at=revoked_at,
                revoke_reason=("owner deactivated (leaver)" if owner.pk in leavers else "no longer needed")
                if revoked_at
                else "",
            )
        )
    keys = VirtualKey.objects.bulk_create(key_rows, batch_size=5000)
    DailyRollup.objects.bulk_create(
        [
            DailyRollup(
                day=key.created_at.date(),
                team_id=key.team_id,
                user_id=key.owner_id,
                key=key,
                token_hash=key.token_hash,
                model="gpt-4o",
                requests=rng.randrange(1, 200),
                cost=Decimal(rng.randrange(1, 5000)) / 100,
            )
            for key in keys
        ],
        batch_size=5000,
    )

    # Audit events: the lifecycle of each key, then other activity, in time order, one valid chain.
    pending: list[tuple[datetime, str, object, str, str, str, int | None, dict]] = []
    for key, request, (owner, team, created), (_, revoke_requested_at, revoked_at) in zip(
        keys, requests, plan, fates, strict=True
    ):
        approver = approvers[team.pk]
        pending += [
            (request.created_at, owner.email, owner.pk, "key_request.created", "keys.keyrequest", str(request.pk),
             team.pk, {"purpose": request.purpose, "models": ["gpt-4o"]}),
            (created - timedelta(seconds=30), approver.email, approver.pk, "key_request.approved", "keys.keyrequest",
             str(request.pk), team.pk, {"approvers": [approver.email], "by_policy": False, "note": ""}),
            (created, approver.email, approver.pk, "key.provisioning_requested", "keys.virtualkey", str(key.pk),
             team.pk, {"alias": key.alias, "models": key.allowed_models, "rotated_from": None}),
            (created + timedelta(seconds=1), "system", None, "key.provisioned", "keys.virtualkey", str(key.pk),
             team.pk, {"alias": key.alias, "token_hash": key.token_hash, "created": True}),
        ]  # fmt: skip
        if revoked_at:
            leaver = owner.pk in leavers
            pending += [
                (revoke_requested_at, "system" if leaver else owner.email, None if leaver else owner.pk,
                 "key.revoked_leaver" if leaver else "key.revoked", "keys.virtualkey", str(key.pk), team.pk,
                 {"reason": "owner deactivated (leaver)" if leaver else "no longer needed", "alias": key.alias}),
                (revoked_at, "system", None, "key.deleted_in_gateway", "keys.virtualkey", str(key.pk), team.pk,
                 {"alias": key.alias, "deleted": True}),
            ]  # fmt: skip
    for user_id, left_at in leavers.items():
        pending.append(
            (left_at, admin.email, admin.pk, "user.deactivated", "accounts.user", str(user_id), None,
             {"reason": "left the company"})
        )  # fmt: skip
    pending = pending[:event_count]
    filler = event_count - len(pending)
    for n in range(filler):
        user = users[rng.randrange(len(users))]
        at = begin + timedelta(seconds=rng.randrange(int((now - begin).total_seconds())))
        action = ("user.login", "membership.role_changed", "budget.threshold_crossed", "model_policy.changed")[n % 4]
        pending.append(
            (at, user.email, user.pk, action, "accounts.user", str(user.pk), team_of[user.pk].pk, {"method": "sso"})
        )
    pending.sort(key=lambda event: event[0])
    prev = GENESIS_HASH
    batch: list[AuditEvent] = []
    for seq, (at, label, actor_id, action, target_type, target_id, team_id, data) in enumerate(pending, start=1):
        event = AuditEvent(
            seq=seq,
            created_at=at,
            actor_id=actor_id,
            actor_label=label,
            action=action,
            target_type=target_type,
            target_id=target_id,
            target_label=f"{target_type} {target_id}",
            team_id=team_id,
            data=canonical_json(data),
            ip="10.0.0.12",
            user_agent="bench",
            request_id=f"bench-{seq}",
            prev_hash=prev,
        )
        event.hash = compute_hash(event, prev)
        prev = event.hash
        batch.append(event)
        if len(batch) == 5000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    return {
        "events": len(pending),
        "keys": len(keys),
        "users": len(users) + 1,
        "teams": len(teams),
        "rollups": len(keys),
    }
