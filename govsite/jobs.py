"""Delivery of background work. Postgres holds the truth; this only decides how a job runs.

With `REDIS_URL` set, jobs go to RQ after the current transaction commits; without it (the
embedded demo) they run in-process at the same moment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)


def enqueue(func: Callable, *args, queue: str = "default", **kwargs) -> None:
    """Run `func(*args, **kwargs)` as a job once the surrounding transaction has committed."""

    def send():
        if settings.REDIS_URL:
            import django_rq

            django_rq.get_queue(queue).enqueue(func, *args, **kwargs)
        else:
            func(*args, **kwargs)

    transaction.on_commit(send, robust=True)
