"""Each scheduled job once per period, however many schedulers run (govsite.cron).

Two `rqcron` processes (two machines, or a restart overlapping the old one) both enqueue every entry.
The job they enqueue is `run_once_per_period(name, interval)`: the first run of a period takes the
period's key in the shared cache (Redis `SET NX` with an expiry when REDIS_URL is set; the database
cache otherwise) and calls the job; any other run of the same period finds the key taken and returns.
Periods are counted from the epoch (`floor(now / interval)`), so every scheduler agrees on them.
Jobs that must not overlap across periods keep their own locks (the pull, the completeness pass);
gateway commands and evidence exports are claimed by the outbox (govsite.outbox), once each.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from django.core.cache import cache
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

SKIPPED = "skipped: this period's run was taken by another scheduler"


def period_key(name: str, interval: int, now: float | None = None) -> str:
    period = int((time.time() if now is None else now) // interval)
    return f"govsite:schedule:{name}:{interval}:{period}"


def run_once_per_period(name: str, interval: int):
    """Run the scheduled job `name` (a dotted path) unless this period's run was already taken."""
    key = period_key(name, interval)
    if not cache.add(key, f"{socket.gethostname()}:{os.getpid()}", timeout=interval * 2):
        log.info("scheduled job %s: %s", name, SKIPPED)
        return SKIPPED
    return import_string(name)()
