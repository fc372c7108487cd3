"""RQ entry points for the auditor workspace: thin, load by id and call a service. Safe to run twice."""

from __future__ import annotations

from audit import checkpoints, reviews, services


def build_evidence_export(export_id: int) -> str:
    return services.evidence_export_build(export_id=export_id)


def sweep_evidence_exports() -> int:
    """Every five minutes: exports the queue lost, or whose worker died, are sent again."""
    return services.evidence_exports_sweep()


def write_audit_checkpoint() -> str:
    """On a schedule: sign the chain's head into a checkpoint outside the database, when it moved."""
    written = checkpoints.checkpoint_write(reason="schedule", only_if_new=True)
    return f"checkpoint {written.number} at event #{written.seq}" if written else "no new events"


def send_access_review_reminders() -> int:
    """Hourly; each open campaign reminds its reviewers once a day."""
    return reviews.access_review_reminders()


def handle_access_review_deadlines() -> dict:
    """Every fifteen minutes: campaigns past their due date revoke or escalate what is undecided."""
    return reviews.access_review_deadlines()
