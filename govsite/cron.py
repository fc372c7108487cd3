"""Schedules for `python manage.py rqcron govsite.cron` (rq's cron scheduler, through django-rq).

Each entry names a thin job; the job loads rows and calls a service.
"""

from django.conf import settings
from rq import cron

from audit import jobs as audit_jobs
from budgets import jobs as budget_jobs
from govsite.accounts import jobs as account_jobs
from govsite.scheduling import run_once_per_period
from keys import jobs as key_jobs

SCHEDULES: list[dict] = [
    # Postgres is the truth: anything the queue lost is found and sent again.
    {"func": key_jobs.sweep_gateway_commands, "interval": 60},
    {"func": key_jobs.revoke_leaver_keys, "interval": 60},
    {"func": key_jobs.expire_keys, "interval": 15 * 60},
    {"func": key_jobs.finish_rotations, "interval": 5 * 60},
    {"func": key_jobs.reconcile_gateway, "interval": 60 * 60},
    # The ledger: pull spend, deliver alerts again, thresholds and period resets, temporary increases, anomalies,
    # raw ledger retention.
    {"func": budget_jobs.pull_spend_logs, "interval": 60},
    {"func": budget_jobs.check_spend_completeness, "interval": settings.LEDGER_COMPLETENESS_INTERVAL_MINUTES * 60},
    {"func": budget_jobs.retry_alert_deliveries, "interval": 60},
    # Slack messages about requests waiting for a team's approvers, and their decisions.
    {"func": account_jobs.sweep_slack_messages, "interval": 60},
    {"func": budget_jobs.evaluate_budgets, "interval": 5 * 60},
    {"func": budget_jobs.revert_temporary_increases, "interval": 60 * 60},
    {"func": budget_jobs.scan_anomalies, "interval": 15 * 60},
    {"func": budget_jobs.prune_ledger, "interval": 24 * 60 * 60},
    # FOCUS exports: each schedule's due period once; failed builds and deliveries again after their back-off.
    {"func": budget_jobs.run_focus_schedules, "interval": 60 * 60},
    {"func": budget_jobs.sweep_focus_exports, "interval": 5 * 60},
    {"func": budget_jobs.ensure_ledger_partitions, "interval": 24 * 60 * 60},
    # The auditor workspace: exports the queue lost, audit checkpoints, review reminders and due dates.
    {"func": audit_jobs.sweep_evidence_exports, "interval": 5 * 60},
    # Signed checkpoints of the audit chain, outside the database.
    {"func": audit_jobs.write_audit_checkpoint, "interval": settings.AUDIT_CHECKPOINT_INTERVAL_MINUTES * 60},
    {"func": audit_jobs.send_access_review_reminders, "interval": 60 * 60},
    {"func": audit_jobs.handle_access_review_deadlines, "interval": 15 * 60},
]


def dotted(func) -> str:
    return f"{func.__module__}.{func.__qualname__}"


# Every scheduler enqueues every entry; the job run is govsite.scheduling.run_once_per_period, so however
# many `rqcron` processes run, each job runs once per period (docs/ARCHITECTURE.md, "Several machines").
for entry in SCHEDULES:
    cron.register(
        run_once_per_period,
        queue_name="default",
        args=(dotted(entry["func"]), entry["interval"]),
        interval=entry["interval"],
        name=entry["func"].__name__,
    )
