"""Delivery of background work. Postgres holds the truth; this only decides how a job runs.

With `REDIS_URL` set, jobs go to RQ after the current transaction commits; without it (the
embedded demo) they run in-process at the same moment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from govsite.logs import bound_job

log = logging.getLogger(__name__)


def enqueue(func: Callable | str, *args, queue: str = "default", **kwargs) -> None:
    """Run `func(*args, **kwargs)` as a job once the surrounding transaction has committed.

    `func` may be a dotted path ("budgets.jobs.evaluate_budget"): a service names its own app's job that
    way, since the jobs module imports the services (jobs are thin: load a row, call a service)."""
    if isinstance(func, str):
        func = import_string(func)

    def send():
        if settings.REDIS_URL:
            import django_rq

            django_rq.get_queue(queue).enqueue(func, *args, **kwargs)
        else:
            with bound_job(f"{func.__module__}.{func.__qualname__}"):
                func(*args, **kwargs)

    transaction.on_commit(send, robust=True)
