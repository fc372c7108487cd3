"""Readiness: can this process do its work now? The database, Redis (when configured), the gateway's
liveness and the spend pull's lag, each checked cheaply and with a short timeout.

`/healthz` stays liveness only (the process answers; nothing else is touched), so an orchestrator does not
restart a healthy web process because PostgreSQL or the gateway is away; `/readyz` says which dependency
is failing. The answer names the failed checks and a short reason, never a host, a URL or a credential:
the details go to the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import redis
from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from budgets.models import PullState
from govsite.gateway.client import GatewayError, get_client

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail}


def check_database() -> Check:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("readiness: the database is unavailable: %s", exc)
        # A broken connection is not kept for the next request.
        connections["default"].close_if_unusable_or_obsolete()
        return Check("database", False, "the database did not answer")
    return Check("database", True)


def check_redis() -> Check | None:
    if not settings.REDIS_URL:
        return None  # jobs run in-process and the cache is the database's: nothing to check
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        log.warning("readiness: Redis is unavailable: %s", exc)
        return Check("redis", False, "Redis did not answer")
    finally:
        client.close()
    return Check("redis", True)


def check_gateway() -> Check:
    try:
        with get_client(timeout=CHECK_TIMEOUT_SECONDS) as client:
            client.liveliness()
    except GatewayError as exc:
        log.warning("readiness: the gateway is not alive: %s", exc)
        return Check("gateway", False, "the gateway's /health/liveliness did not answer")
    return Check("gateway", True)


def pull_lag_seconds(now: datetime | None = None) -> float | None:
    """How far behind the ledger is: now less the pull's watermark. None before the first pull."""
    watermark = PullState.objects.filter(name="spend_logs").values_list("watermark", flat=True).first()
    if watermark is None:
        return None
    return max(0.0, ((now or timezone.now()) - watermark).total_seconds())


def check_pull(database: Check) -> Check:
    if not database.ok:
        return Check("pull", False, "unknown: the database did not answer")
    lag = pull_lag_seconds()
    limit = settings.READYZ_MAX_PULL_LAG_SECONDS
    if lag is None:
        return Check("pull", True, "no pull has run yet")
    if lag > limit:
        return Check("pull", False, f"the spend pull is {lag:.0f}s behind (more than {limit}s)")
    return Check("pull", True, f"{lag:.0f}s behind")


def readiness() -> tuple[bool, dict]:
    """Every check; (all passed, the answer's body)."""
    database = check_database()
    checks = [database, check_redis(), check_gateway(), check_pull(database)]
    checks = [check for check in checks if check is not None]
    # The pull's lag is unknown when the database is down; the database is then what failed.
    failed = [c.name for c in checks if not c.ok and not (c.name == "pull" and not database.ok)]
    body = {
        "status": "ok" if not failed else "unavailable",
        "failed": failed,
        "checks": {check.name: check.as_dict() for check in checks},
    }
    return not failed, body
