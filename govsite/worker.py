"""RQ workers that pay their start-up once: `manage.py rqworker` uses them (settings.RQ["WORKER_CLASS"]).

rq's default worker forks a fresh child per job. The child inherits whatever the parent has imported,
but the parent of a plain `rqworker` has imported Django and little else: every child then imported
litellm again (the gateway client imports it late, it takes seconds) and read the price map, about two
seconds per job before it talked to the gateway. These workers import, before the first fork, every
module a job reaches — the apps' job modules, litellm's request models (`litellm.proxy._types`) and the
price map — so a forked child starts with all of it and pays only for its own work.

`PreloadedWorker` (the default) also runs the short jobs — a gateway command, an alert delivery, the
sweepers that only enqueue — in its own process, without forking (`IN_PROCESS_JOBS`): each is a few
queries and HTTP calls with a timeout, opens and closes what it uses, and rq's timeout still applies (a
SIGALRM in the worker). That saves the fork and the new PostgreSQL connection a child opens, most of a
gateway command's cost once litellm is loaded. Every other job (an evidence bundle, a spend pull: long,
memory-hungry) is forked as before, so it cannot hurt the next job. `PreloadedSimpleWorker` runs every
job without forking (`--worker-class govsite.worker.PreloadedSimpleWorker`).
"""

from __future__ import annotations

import logging
import time

from django.db import close_old_connections, connections
from rq.worker import SimpleWorker, Worker, WorkerStatus

# The job modules: imported here so a job's first run imports nothing (they import the services, the
# models, the gateway client). This module sits with the schedules, on top of every app.
from audit import jobs as audit_jobs  # noqa: F401
from budgets import jobs as budget_jobs  # noqa: F401
from govsite.accounts import jobs as account_jobs  # noqa: F401
from govsite.logs import JobLogContext
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


# Short, bounded jobs (a few queries and gateway/SMTP calls with their own timeouts) that are safe to run in
# the worker's own process: they keep no state between runs and leave no connection open but Django's.
IN_PROCESS_JOBS = frozenset(
    {
        "keys.jobs.run_gateway_command",
        "keys.jobs.run_gateway_commands",
        "keys.jobs.sweep_gateway_commands",
        "budgets.jobs.deliver_alert",
        "budgets.jobs.retry_alert_deliveries",
        "budgets.jobs.evaluate_budget",
        "audit.jobs.sweep_evidence_exports",
        "govsite.accounts.jobs.deliver_slack_message",
        "govsite.accounts.jobs.sweep_slack_messages",
    }
)


def runs_in_process(job) -> bool:
    """A short job, named directly or through the schedules' once-per-period wrapper (its first argument)."""
    name = job.func_name
    if name == "govsite.scheduling.run_once_per_period" and job.args:
        name = job.args[0]
    return name in IN_PROCESS_JOBS


class _Preloading(JobLogContext):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        seconds = preload()
        # Nothing the preload opened may be shared with a forked child (django-rq closes connections
        # again before it starts work; this keeps a direct instantiation as safe).
        connections.close_all()
        log.info("worker %s: litellm and the job modules loaded in %.2f s, before the first job", self.name, seconds)

    def _run_here(self, job, queue):
        """A job in this process (as rq's SimpleWorker does), between checks of Django's connections."""
        close_old_connections()  # as Django does around a request: drop broken or expired connections
        try:
            self.prepare_execution(job)
            self.perform_job(job, queue)
            self.set_state(WorkerStatus.IDLE)
        finally:
            close_old_connections()


class PreloadedWorker(_Preloading, Worker):
    """Runs the short jobs itself and forks a child for the others, from a parent that has already loaded
    everything a job needs."""

    def execute_job(self, job, queue):
        if runs_in_process(job):
            return self._run_here(job, queue)
        # A child must not inherit the connection an in-process job left open (two processes on one socket).
        connections.close_all()
        return super().execute_job(job, queue)

    def get_heartbeat_ttl(self, job) -> int:
        if runs_in_process(job):
            # This process runs the job and cannot beat meanwhile: the heartbeat covers the job's whole timeout.
            return SimpleWorker.get_heartbeat_ttl(self, job)
        return super().get_heartbeat_ttl(job)


class PreloadedSimpleWorker(_Preloading, SimpleWorker):
    """Runs every job in the worker process itself (no fork), with everything loaded once."""

    def execute_job(self, job, queue):
        return self._run_here(job, queue)
