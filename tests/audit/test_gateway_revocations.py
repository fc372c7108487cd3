"""Revocations decided in an access review, made by its due date, or of a leaver's keys reach the gateway
like any other: the sandbox gateway runs as its own process and the keys stop working."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit import reports, reviews
from audit.models import AccessReview, AuditEvent
from audit.period import Period
from govsite.accounts import services as account_services
from keys import services as key_services
from keys.models import VirtualKey
from tests.audit.conftest import approved_key, build_export, export_path
from tests.keys.conftest import chat

pytestmark = pytest.mark.django_db(transaction=True)


def _refresh(obj):
    obj.refresh_from_db()
    return obj


def test_review_revocations_reach_the_sandbox_gateway_and_prove_themselves_in_the_bundle(
    live_gateway, team_a, member_a_user, approver_a_user, admin_user, auditor_user, open_model, open_bundle
):
    decided = approved_key(member_a_user, approver_a_user, team_a, [open_model])
    unreviewed = approved_key(member_a_user, approver_a_user, team_a, [open_model])
    kept = approved_key(member_a_user, approver_a_user, team_a, [open_model])
    secrets = {
        key.pk: key_services.key_reveal(key=_refresh(key), actor=member_a_user) for key in (decided, unreviewed, kept)
    }
    for key in (decided, unreviewed, kept):
        assert chat(live_gateway.url, secrets[key.pk]).status_code == 200

    review = reviews.access_review_open(
        actor=admin_user, name="Gateway review", due_on=timezone.now().date() + timedelta(days=7), on_due="revoke"
    )
    items = {item.key_id: item for item in review.items.all()}
    reviews.access_review_decide(
        actor=approver_a_user, item=items[decided.pk], decision="revoke", rationale="contractor finished"
    )
    reviews.access_review_decide(actor=approver_a_user, item=items[kept.pk], decision="keep", rationale="daily use")
    assert _refresh(decided).status == VirtualKey.Status.REVOKED and decided.revoked_at is not None
    assert chat(live_gateway.url, secrets[decided.pk]).status_code == 401

    AccessReview.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    assert reviews.access_review_deadlines() == {"revoked": 1, "escalated": 0}
    assert _refresh(unreviewed).status == VirtualKey.Status.REVOKED and unreviewed.revoked_at is not None
    assert chat(live_gateway.url, secrets[unreviewed.pk]).status_code == 401
    assert chat(live_gateway.url, secrets[kept.pk]).status_code == 200

    reviews.access_review_sign_off(actor=admin_user, review=review, note="Team A reviewed; two keys revoked.")
    bundle = open_bundle(export_path(build_export(auditor_user)))
    rows = {int(row["key_id"]): row for row in bundle.csv("access_reviews")}
    for key in (decided, unreviewed):
        deleted = AuditEvent.objects.get(action="key.deleted_in_gateway", target_id=str(key.pk))
        assert rows[key.pk]["deleted_in_gateway_event_seq"] == str(deleted.seq)
        assert rows[key.pk]["check_revocation_done"] == "PASS"
    assert rows[unreviewed.pk]["decided_by"] == "due-date rule" and rows[unreviewed.pk]["by_deadline"] == "true"
    assert rows[kept.pk]["decision"] == "keep"
    assert bundle.manifest()["checks"]["failed"] == 0


def test_a_leavers_key_revoked_at_the_gateway_by_the_next_job_run_shows_its_delay(
    live_gateway, team_a, member_a_user, approver_a_user, admin_user, open_model
):
    key = approved_key(member_a_user, approver_a_user, team_a, [open_model])
    secret = key_services.key_reveal(key=_refresh(key), actor=member_a_user)
    account_services.user_deactivate(actor=admin_user, user=member_a_user, reason="left the company")
    assert chat(live_gateway.url, secret).status_code == 200  # live until the job runs
    assert key_services.leaver_keys_sweep() == 1
    assert chat(live_gateway.url, secret).status_code == 401

    day = timezone.now().date()
    (row,) = reports.leaver_rows(Period(day, day))
    deactivated_at = _refresh(member_a_user).deactivated_at
    assert row["key_alias"] == key.alias and row["revoked_at"] == reports.iso(_refresh(key).revoked_at)
    assert row["delay_hours"] == reports.hours_between(deactivated_at, key.revoked_at) < 0.1
    assert row["check_key_removed_in_time"] == "PASS"


def test_a_reduction_in_a_review_changes_the_keys_grants_at_the_gateway(
    live_gateway, team_a, member_a_user, approver_a_user, admin_user, open_model, cheap_model
):
    key = approved_key(member_a_user, approver_a_user, team_a, [open_model, cheap_model])
    secret = key_services.key_reveal(key=_refresh(key), actor=member_a_user)
    review = reviews.access_review_open(
        actor=admin_user, name="Reduce", due_on=timezone.now().date() + timedelta(days=7), on_due="escalate"
    )
    decision = reviews.access_review_decide(
        actor=approver_a_user,
        item=review.items.get(key=key),
        decision="reduce",
        rationale="only the small model is needed",
        keep_models=[cheap_model.name],
        max_budget=Decimal("5"),
    )
    decision.gateway_command.refresh_from_db()
    assert decision.gateway_command.status == "done"
    with live_gateway.client() as client:
        info = client.key_info(key=_refresh(key).token_hash)["info"]
    assert info["models"] == [cheap_model.name] and info["max_budget"] == 5.0
    assert chat(live_gateway.url, secret, model=cheap_model.name).status_code == 200
    assert chat(live_gateway.url, secret, model=open_model.name).status_code in (401, 403)
