"""RQ workers that pay their start-up once: `manage.py rqworker` uses them (settings.RQ["WORKER_CLASS"]).

rq's default worker forks a fresh child per job. The child inherits whatever the parent has imported,
but the parent of a plain `rqworker` has imported Django and little else: every child then imported
litellm again (the gateway client imports it late, it takes seconds) and read the price map, about two
seconds per job before it talked to the gateway. These workers import, before the first fork, every
module a job reaches — the apps' job modules, litellm's request models (`litellm.proxy._types`) and the
price map — so a forked child starts with all of it and pays only for its own work.

`PreloadedWorker` still forks per job (a job that crashes or leaks cannot hurt the next one; rq's
timeouts kill a stuck child): it is the default. `PreloadedSimpleWorker` runs jobs in the worker
process itself, without forking; it is safe for govsite's jobs (each opens and closes what it uses,
and Django's stale connections are closed between jobs) and saves the fork, at the price of one job's
crash taking the worker down (its supervisor restarts it; the outbox's sweeper re-runs the job).
Choose it with `manage.py rqworker --worker-class govsite.worker.PreloadedSimpleWorker`.
"""

from __future__ import annotations

import logging
import time

from django.db import close_old_connections, connections
from rq.worker import SimpleWorker, Worker

# The job modules: imported here so a job's first run imports nothing (they import the services, the
# models, the gateway client). This module sits with the schedules, on top of every app.
from audit import jobs as audit_jobs  # noqa: F401
from budgets import jobs as budget_jobs  # noqa: F401
from keys import jobs as key_jobs  # noqa: F401

log = logging.getLogger(__name__)
_preloaded_in: float | None = None


def preload() -> float:
    """Import litellm's request models and load its price map in this process, once; returns the
    seconds it took the first time (0 afterwards)."""
    global _preloaded_in
    if _preloaded_in is not None:
        return 0.0
    started = time.monotonic()
    import litellm  # with LITELLM_LOCAL_MODEL_COST_MAP=True the price map comes from the package
    from litellm.proxy import _types  # noqa: F401  the admin API's request models the client validates with

    # The price map (a dict of thousands of entries) is read by litellm at import; touching it here
    # makes sure it is in memory before the fork, whatever litellm's import does lazily.
    len(litellm.model_cost)
    _preloaded_in = time.monotonic() - started
    return _preloaded_in


class _Preloading:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        seconds = preload()
        # Nothing the preload opened may be shared with a forked child (django-rq closes connections
        # again before it starts work; this keeps a direct instantiation as safe).
        connections.close_all()
        log.info("worker %s: litellm and the job modules loaded in %.2f s, before the first job", self.name, seconds)


class PreloadedWorker(_Preloading, Worker):
    """Forks a child per job, from a parent that has already loaded everything a job needs."""


class PreloadedSimpleWorker(_Preloading, SimpleWorker):
    """Runs each job in the worker process itself (no fork), with everything loaded once."""

    def execute_job(self, job, queue):
        # As Django does around a request: drop connections that broke or outlived CONN_MAX_AGE.
        close_old_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            close_old_connections()
