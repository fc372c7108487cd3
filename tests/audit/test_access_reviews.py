"""Access review campaigns: the snapshot, who may decide what (never their own key), required
rationale, keep / reduce / revoke, reminders, the due date (revoke or escalate), sign-off and the
campaign report in the evidence bundle."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

import audit
from audit import jobs as audit_jobs
from audit import reviews
from audit.models import AccessReview, AccessReviewDecision, AccessReviewItem, AuditEvent
from budgets.models import DailyRollup
from govsite.accounts import services as account_services
from govsite.errors import InvalidTransition
from keys import services as key_services
from keys.models import GatewayCommand, KeyKind, VirtualKey
from tests.audit.conftest import build_export, export_path
from tests.factories import VirtualKeyFactory

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers exist on PostgreSQL only")


@pytest.fixture
def keys(world):
    """Live keys: two of member A's (one a service key), approver A's own, member B's; one revoked key."""
    admin, approver, member = world.users["admin"], world.users["approver_a"], world.users["member_a"]
    return {
        "a1": VirtualKeyFactory(team=world.team_a, owner=member, approved_by=approver),
        "a2": VirtualKeyFactory(
            team=world.team_a, owner=member, approved_by=approver, kind=KeyKind.SERVICE, service_name="deploy-bot"
        ),
        "own": VirtualKeyFactory(team=world.team_a, owner=approver, approved_by=admin),
        "b1": VirtualKeyFactory(team=world.team_b, owner=world.users["member_b"], approved_by=admin),
        "gone": VirtualKeyFactory(
            team=world.team_a, owner=member, status=VirtualKey.Status.REVOKED, revoked_at=timezone.now()
        ),
    }


def open_review(admin, *, on_due="revoke", teams=(), due_in_days=7, name="Q3 key review"):
    return reviews.access_review_open(
        actor=admin, name=name, due_on=timezone.now().date() + timedelta(days=due_in_days), on_due=on_due, teams=teams
    )


def item_of(review, key) -> AccessReviewItem:
    return review.items.get(key=key)


def decide(actor, item, decision="keep", rationale="still used every day by the payments team", **kwargs):
    return reviews.access_review_decide(actor=actor, item=item, decision=decision, rationale=rationale, **kwargs)


# --- opening: the snapshot ----------------------------------------------------------------------------------


def test_opening_snapshots_every_live_key_in_scope_with_its_use_and_spend(
    world, keys, admin_user, django_capture_on_commit_callbacks
):
    today = timezone.now().date()
    for days_ago, cost in ((1, "2.50"), (30, "1.25"), (120, "9.00")):
        DailyRollup.objects.create(
            day=today - timedelta(days=days_ago), team=world.team_a, key=keys["a1"], model="gpt-4o",
            requests=4, cost=Decimal(cost),
        )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        review = open_review(admin_user)

    assert review.key_count == 4 and review.all_teams
    items = {item.key_id: item for item in review.items.all()}
    assert set(items) == {keys[name].pk for name in ("a1", "a2", "own", "b1")}  # the revoked key is not live
    a1 = items[keys["a1"].pk]
    assert (a1.owner_email, a1.team_name, a1.key_status) == ("member-a@example.com", "Team A", "active")
    assert a1.allowed_models == ["gpt-4o", "gpt-4o-mini"] and a1.max_budget == Decimal("20")
    assert a1.spend_90d == Decimal("3.75")  # the 120-day-old spend is outside the window
    assert a1.last_used_day == today - timedelta(days=1)
    assert a1.requested_by == world.users["member_a"] and a1.data_classification == "Internal"
    event = AuditEvent.objects.get(action="access_review.opened")
    assert event.actor == admin_user and event.data["keys"] == 4

    # Each reviewer is told how many keys are theirs: approver A gets member A's two (not their own);
    # approver A's own key and team B's (no approver) go to the admins.
    bodies = {m.to[0]: m.body for m in mail.outbox}
    assert set(bodies) == {"approver-a@example.com", "admin@example.com"}
    assert "2 keys wait for your decision" in bodies["approver-a@example.com"]
    assert "2 keys wait for your decision" in bodies["admin@example.com"]


def test_a_campaign_over_chosen_teams_snapshots_only_their_keys(world, keys, admin_user):
    review = open_review(admin_user, teams=[world.team_b])
    assert [item.key_alias for item in review.items.all()] == [keys["b1"].alias]
    assert not review.all_teams and list(review.teams.all()) == [world.team_b]


def test_the_snapshot_never_changes_after_opening(world, keys, admin_user, member_a_user):
    review = open_review(admin_user)
    before = list(review.items.order_by("pk").values())
    key = keys["a1"]
    VirtualKey.objects.filter(pk=key.pk).update(allowed_models=["gpt-5"], max_budget=Decimal("999"))
    key_services.key_revoke(key=VirtualKey.objects.get(pk=key.pk), actor=member_a_user, reason="done with it")
    account_services.user_deactivate(actor=admin_user, user=world.users["member_b"], reason="left")
    VirtualKeyFactory(
        team=world.team_a, owner=member_a_user, approved_by=world.users["approver_a"]
    )  # a new key after opening

    assert list(review.items.order_by("pk").values()) == before
    assert review.items.count() == 4
    page = audit_client_page(world, review)
    assert "gpt-4o, gpt-4o-mini" in page and "gpt-5" not in page  # the page shows the snapshot


def audit_client_page(world, review) -> str:
    response = world.client("auditor").get(reverse("access_review_detail", args=[review.pk]))
    assert response.status_code == 200
    return response.content.decode()


@postgres_only
def test_the_database_refuses_to_change_a_snapshot_row_or_a_decision(keys, admin_user, approver_a_user):
    review = open_review(admin_user)
    item = item_of(review, keys["a1"])
    decide(approver_a_user, item)
    for sql in (
        "UPDATE audit_accessreviewitem SET max_budget = 1 WHERE id = %s",
        "DELETE FROM audit_accessreviewitem WHERE id = %s",
        "UPDATE audit_accessreviewdecision SET rationale = 'edited' WHERE item_id = %s",
    ):
        with pytest.raises(DatabaseError, match="written once"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [item.pk])
    assert AccessReviewDecision.objects.get(item=item).rationale == "still used every day by the payments team"


def test_a_campaign_with_no_keys_is_refused_and_nothing_is_written(world, admin_user, admin_client):
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        open_review(admin_user)
    assert refused.value.message_dict == {
        "teams": ["There is no live key in any team: a campaign needs at least one key to review."]
    }
    VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"])
    with pytest.raises(ValidationError, match="no live key in Team B"):
        open_review(admin_user, teams=[world.team_b])
    response = admin_client.post(
        reverse("access_review_open"),
        {
            "name": "Empty",
            "due_on": (timezone.now().date() + timedelta(days=3)).isoformat(),
            "on_due": "revoke",
            "confirm_revoke": "on",
            "teams": [world.team_b.pk],
        },
    )
    assert response.status_code == 400 and "no live key in Team B" in response.content.decode()
    assert AccessReview.objects.count() == 0 and AccessReviewItem.objects.count() == 0
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "  "}, "name", "Name the campaign"),
        ({"due_in_days": 0}, "due_on", "The due date must be after today."),
        ({"due_in_days": -5}, "due_on", "The due date must be after today."),
        ({"on_due": "ignore"}, "on_due", "Choose what happens"),
    ],
)
def test_bad_campaign_input_is_refused_with_a_clear_error(keys, admin_user, fields, field, message):
    with pytest.raises(ValidationError) as refused:
        open_review(admin_user, **fields)
    assert message in refused.value.message_dict[field][0]
    assert AccessReview.objects.count() == 0


def test_only_admins_open_campaigns(keys, approver_a_user, auditor_user, finance_user):
    for user in (approver_a_user, auditor_user, finance_user):
        with pytest.raises(PermissionDenied):
            open_review(user)
    assert AccessReview.objects.count() == 0


# --- deciding -------------------------------------------------------------------------------------------


def test_nobody_reviews_their_own_key_it_goes_to_another_approver_or_an_admin(
    world, keys, admin_user, approver_a_user, approver_a_client, admin_client
):
    review = open_review(admin_user)
    own = item_of(review, keys["own"])
    before = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied, match="Nobody reviews their own key"):
        decide(approver_a_user, own)
    assert not AccessReviewDecision.objects.exists() and AuditEvent.objects.count() == before

    queue = approver_a_client.get(reverse("access_review_queue")).context["page"].object_list
    assert {i.key_id for i in queue} == {keys["a1"].pk, keys["a2"].pk}  # not their own, not team B's
    assert approver_a_client.get(reverse("access_review_decide", args=[own.pk])).status_code == 404
    response = approver_a_client.post(
        reverse("access_review_decide", args=[own.pk]), {"decision": "keep", "rationale": "mine, trust me"}
    )
    assert response.status_code == 404 and not AccessReviewDecision.objects.exists()

    admin_queue = admin_client.get(reverse("access_review_queue")).context["page"].object_list
    assert own.pk in {i.pk for i in admin_queue}
    decided = decide(admin_user, own, rationale="approver's key, used for the on-call runbook")
    assert decided.decided_by == admin_user and decided.as_admin


def test_an_admin_never_reviews_their_own_key_either(world, admin_user):
    key = VirtualKeyFactory(team=world.team_a, owner=admin_user, approved_by=world.users["approver_a"])
    review = open_review(admin_user)
    with pytest.raises(PermissionDenied, match="Nobody reviews their own key"):
        decide(admin_user, item_of(review, key))


@pytest.mark.parametrize("rationale", ["", "   \n  "])
def test_a_decision_without_a_rationale_is_refused_and_nothing_is_written(
    keys, admin_user, approver_a_user, approver_a_client, rationale
):
    review = open_review(admin_user)
    item = item_of(review, keys["a1"])
    before = AuditEvent.objects.count()
    for decision in ("keep", "revoke"):
        with pytest.raises(ValidationError) as refused:
            decide(approver_a_user, item, decision=decision, rationale=rationale)
        assert "rationale" in refused.value.message_dict
    response = approver_a_client.post(
        reverse("access_review_decide", args=[item.pk]), {"decision": "revoke", "rationale": rationale}
    )
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    assert not AccessReviewDecision.objects.exists() and AuditEvent.objects.count() == before
    assert VirtualKey.objects.get(pk=keys["a1"].pk).status == VirtualKey.Status.ACTIVE


def test_keep_records_reviewer_time_and_rationale_once(keys, admin_user, approver_a_user, approver_a_client):
    review = open_review(admin_user)
    item = item_of(review, keys["a1"])
    response = approver_a_client.post(
        reverse("access_review_decide", args=[item.pk]),
        {"decision": "keep", "rationale": "Used daily for the payments refactor"},
    )
    assert response.status_code == 302 and response.url == reverse("access_review_queue")
    decision = AccessReviewDecision.objects.get(item=item)
    assert (decision.decision, decision.decided_by, decision.by_deadline) == ("keep", approver_a_user, False)
    assert decision.rationale == "Used daily for the payments refactor" and decision.key_status_at_decision == "active"
    event = AuditEvent.objects.get(action="access_review.decided")
    assert event.actor == approver_a_user and event.data["rationale"] == decision.rationale
    assert event.team_id == item.team_id
    with pytest.raises(InvalidTransition, match="already decided"):
        decide(approver_a_user, item)
    queue = approver_a_client.get(reverse("access_review_queue")).context["page"].object_list
    assert item.pk not in [i.pk for i in queue] and len(queue) == 1  # member A's service key is left


def test_revoke_goes_through_the_key_service_as_a_gateway_command(keys, admin_user, approver_a_user, mailoutbox):
    review = open_review(admin_user)
    decision = decide(approver_a_user, item_of(review, keys["a1"]), decision="revoke", rationale="project ended")
    key = VirtualKey.objects.get(pk=keys["a1"].pk)
    assert key.status == VirtualKey.Status.REVOKING and key.revoked_by == approver_a_user
    assert key.revoke_reason == f"access review #{review.pk}: project ended"
    assert decision.gateway_command.kind == GatewayCommand.Kind.KEY_DELETE and decision.gateway_command.key == key
    revoked = AuditEvent.objects.get(action="key.revoked", target_id=str(key.pk))
    assert revoked.actor == approver_a_user


def test_reduce_takes_models_and_budget_away_at_the_gateway(keys, admin_user, approver_a_user):
    review = open_review(admin_user)
    item = item_of(review, keys["a1"])
    with pytest.raises(ValidationError, match="takes something away"):
        decide(approver_a_user, item, decision="reduce", keep_models=["gpt-4o", "gpt-4o-mini"])
    with pytest.raises(ValidationError, match="only keep models the key already has"):
        decide(approver_a_user, item, decision="reduce", keep_models=["gpt-4o", "o3"])
    with pytest.raises(ValidationError, match="at most \\$20"):
        decide(approver_a_user, item, decision="reduce", max_budget=Decimal("50"))
    decision = decide(
        approver_a_user, item, decision="reduce", rationale="only needs the small model", keep_models=["gpt-4o-mini"],
        max_budget=Decimal("5"),
    )  # fmt: skip
    key = VirtualKey.objects.get(pk=keys["a1"].pk)
    assert key.allowed_models == ["gpt-4o-mini"] and key.max_budget == Decimal("5")
    assert key.status == VirtualKey.Status.ACTIVE
    command = decision.gateway_command
    assert command.kind == GatewayCommand.Kind.KEY_UPDATE and command.payload == {
        "models": ["gpt-4o-mini"],
        "max_budget": 5.0,
    }
    assert decision.changes["models"] == {"before": ["gpt-4o", "gpt-4o-mini"], "after": ["gpt-4o-mini"]}
    assert item_of(review, keys["a1"]).allowed_models == ["gpt-4o", "gpt-4o-mini"]  # the snapshot stays
    assert AuditEvent.objects.filter(action="key.reduced", target_id=str(key.pk)).exists()


def test_auditors_finance_and_members_cannot_decide(keys, admin_user, auditor_user, finance_user, member_b_user):
    review = open_review(admin_user)
    for user in (auditor_user, finance_user, member_b_user):
        with pytest.raises(PermissionDenied):
            decide(user, item_of(review, keys["a1"]))
    assert not AccessReviewDecision.objects.exists()


# --- reminders and the due date ----------------------------------------------------------------------------


def test_reminders_go_to_each_reviewer_once_a_day(
    keys, admin_user, approver_a_user, django_capture_on_commit_callbacks
):
    review = open_review(admin_user)
    decide(approver_a_user, item_of(review, keys["a2"]))
    now = timezone.now()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert reviews.access_review_reminders(now=now) == 2
        assert reviews.access_review_reminders(now=now + timedelta(hours=3)) == 0
    bodies = {m.to[0]: m.body for m in mail.outbox}
    assert "1 key wait for your decision" in bodies["approver-a@example.com"]
    assert "2 keys wait" in bodies["admin@example.com"]
    assert AuditEvent.objects.filter(action="access_review.reminders_sent").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert reviews.access_review_reminders(now=now + timedelta(days=1)) == 2
    review.refresh_from_db()
    assert review.last_reminded_on == (now + timedelta(days=1)).date()


def test_undecided_keys_are_revoked_at_the_due_date_by_the_job(keys, admin_user, approver_a_user):
    review = open_review(admin_user, on_due="revoke")
    decide(approver_a_user, item_of(review, keys["a1"]))
    assert reviews.access_review_deadlines(now=review.due_at - timedelta(minutes=1)) == {"revoked": 0, "escalated": 0}
    AccessReview.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(seconds=1))

    assert audit_jobs.handle_access_review_deadlines() == {"revoked": 3, "escalated": 0}
    assert audit_jobs.handle_access_review_deadlines() == {"revoked": 0, "escalated": 0}  # once
    review.refresh_from_db()
    assert review.deadline_handled_at is not None and review.escalated_at is None
    for name in ("a2", "own", "b1"):
        decision = item_of(review, keys[name]).decision
        assert (decision.decision, decision.by_deadline, decision.decided_by) == ("revoke", True, None)
        assert "Not reviewed by the due date" in decision.rationale
        key = VirtualKey.objects.get(pk=keys[name].pk)
        assert key.status == VirtualKey.Status.REVOKING and "not reviewed by" in key.revoke_reason
        assert decision.gateway_command.kind == GatewayCommand.Kind.KEY_DELETE
    assert VirtualKey.objects.get(pk=keys["a1"].pk).status == VirtualKey.Status.ACTIVE  # kept by its reviewer
    assert AuditEvent.objects.filter(action="key.revoked").count() == 3
    assert AuditEvent.objects.filter(action="access_review.due_date_handled").count() == 1


def test_undecided_keys_are_escalated_to_the_admins_at_the_due_date(
    keys, admin_user, approver_a_user, approver_a_client, django_capture_on_commit_callbacks
):
    review = open_review(admin_user, on_due="escalate")
    AccessReview.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert reviews.access_review_deadlines() == {"revoked": 0, "escalated": 4}
    review.refresh_from_db()
    assert review.escalated_at is not None
    assert [m.to for m in mail.outbox] == [["admin@example.com"]] and "4 key(s)" in mail.outbox[0].body
    assert VirtualKey.objects.filter(status=VirtualKey.Status.ACTIVE).count() == 4  # nothing revoked
    assert "No key waits" in approver_a_client.get(reverse("access_review_queue")).content.decode()
    with pytest.raises(PermissionDenied):
        decide(approver_a_user, item_of(review, keys["a1"]))
    decide(admin_user, item_of(review, keys["a1"]), rationale="escalated: owner confirmed the use")
    assert AuditEvent.objects.filter(action="access_review.escalated").count() == 1


# --- sign-off and the report -----------------------------------------------------------------------------------


def test_sign_off_waits_for_every_decision_and_every_confirmed_revocation(keys, admin_user, approver_a_user):
    review = open_review(admin_user, teams=[keys["a1"].team])
    with pytest.raises(ValidationError, match="3 key\\(s\\) are not decided yet"):
        reviews.access_review_sign_off(actor=admin_user, review=review, note="done")
    decide(approver_a_user, item_of(review, keys["a1"]))
    decide(approver_a_user, item_of(review, keys["a2"]), decision="revoke", rationale="bot retired")
    decide(admin_user, item_of(review, keys["own"]), rationale="on-call key")
    with pytest.raises(ValidationError, match="1 revocation\\(s\\) are not confirmed"):
        reviews.access_review_sign_off(actor=admin_user, review=review, note="done")
    with pytest.raises(ValidationError, match="Write the sign-off statement"):
        reviews.access_review_sign_off(actor=admin_user, review=review, note=" ")
    VirtualKey.objects.filter(pk=keys["a2"].pk).update(status="revoked", revoked_at=timezone.now())

    closed = reviews.access_review_sign_off(actor=admin_user, review=review, note="Team A reviewed; one bot revoked.")
    assert closed.status == AccessReview.Status.CLOSED and closed.signed_off_by == admin_user
    event = AuditEvent.objects.get(action="access_review.signed_off")
    assert event.data["decisions"] == {"keep": 2, "revoke": 1}
    with pytest.raises(InvalidTransition):
        reviews.access_review_sign_off(actor=admin_user, review=review, note="again")
    with pytest.raises(InvalidTransition, match="decisions are final"):
        decide(admin_user, item_of(review, keys["a1"]))


def test_only_admins_sign_off(keys, admin_user, approver_a_user, auditor_user):
    review = open_review(admin_user, teams=[keys["b1"].team])
    decide(admin_user, item_of(review, keys["b1"]))
    for user in (approver_a_user, auditor_user):
        with pytest.raises(PermissionDenied):
            reviews.access_review_sign_off(actor=user, review=review, note="ok")


def test_the_campaign_report_goes_into_the_bundle_of_the_period_it_was_signed_off_in(
    world, keys, admin_user, approver_a_user, auditor_user, open_bundle
):
    review = open_review(admin_user, teams=[world.team_a])
    decide(approver_a_user, item_of(review, keys["a1"]), rationale="daily use")
    decide(approver_a_user, item_of(review, keys["a2"]), decision="revoke", rationale="bot retired")
    decide(admin_user, item_of(review, keys["own"]), decision="reduce", rationale="less", max_budget=Decimal("5"))
    revoked = VirtualKey.objects.get(pk=keys["a2"].pk)
    VirtualKey.objects.filter(pk=revoked.pk).update(status="revoked", revoked_at=timezone.now())
    with transaction.atomic():  # what the gateway command's success writes (keys.gateway_handlers)
        deleted = audit.record(action="key.deleted_in_gateway", actor_label="system", target=revoked)
    reviews.access_review_sign_off(actor=admin_user, review=review, note="Team A done")

    bundle = open_bundle(export_path(build_export(auditor_user)))
    rows = {row["key_alias"]: row for row in bundle.csv("access_reviews")}
    assert set(rows) == {keys[name].alias for name in ("a1", "a2", "own")}
    a2 = rows[keys["a2"].alias]
    assert (a2["decision"], a2["rationale"], a2["decided_by"]) == ("revoke", "bot retired", "approver-a@example.com")
    assert a2["deleted_in_gateway_event_seq"] == str(deleted.seq) and a2["revoked_at"]
    assert a2["signed_off_by"] == "admin@example.com" and a2["sign_off_note"] == "Team A done"
    assert a2["owner"] == "member-a@example.com" and a2["snapshot_at"]
    for row in rows.values():
        assert row["check_rationale"] == "PASS" and row["check_reviewer_not_owner"] == "PASS"
    assert a2["check_revocation_done"] == "PASS" and rows[keys["a1"].alias]["check_revocation_done"] == "N/A"
    assert '"max_budget"' in rows[keys["own"].alias]["changes"]
    assert bundle.manifest()["row_counts"]["access_reviews"] == 3


# --- pages ---------------------------------------------------------------------------------------------------


def test_campaign_pages_for_admins_and_auditors(
    world, keys, admin_client, auditor_client, admin_user, approver_a_user, django_assert_max_num_queries
):
    due_on = (timezone.now().date() + timedelta(days=10)).isoformat()
    response = admin_client.post(
        reverse("access_review_open"),
        {"name": "Page review", "due_on": due_on, "on_due": "revoke", "confirm_revoke": "on"},
    )
    review = AccessReview.objects.get()
    assert response.status_code == 302 and response.url == reverse("access_review_detail", args=[review.pk])
    decide(approver_a_user, item_of(review, keys["a1"]), rationale="the reason shown on the page")
    with django_assert_max_num_queries(12):
        page = auditor_client.get(response.url).content.decode()
    assert "the reason shown on the page" in page and "3 undecided" in page
    assert "Sign off" not in page  # auditors read; only admins sign off
    assert "Sign off" in admin_client.get(response.url).content.decode()
    listing = auditor_client.get(reverse("access_review_list")).content.decode()
    assert "Page review" in listing and "1 / 4" in listing and "Open a campaign" not in listing
    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse("access_review_queue")).status_code == 200


def test_the_inventory_of_an_earlier_period_shows_a_keys_grants_before_a_later_reduction(
    world, admin_user, approver_a_user, auditor_user, open_bundle
):
    key = VirtualKeyFactory(
        team=world.team_a,
        owner=world.users["member_a"],
        approved_by=approver_a_user,
        created_at=timezone.now() - timedelta(days=5),
        max_budget=Decimal("20.00"),
    )
    review = open_review(admin_user)
    decide(
        approver_a_user, item_of(review, key), decision="reduce", rationale="only the small model",
        keep_models=["gpt-4o-mini"], max_budget=Decimal("5"),
    )  # fmt: skip
    today = timezone.now().date()
    earlier = build_export(auditor_user, period_start=today - timedelta(days=5), period_end=today - timedelta(days=1))
    (row,) = open_bundle(export_path(earlier)).json("key_inventory")["rows"]
    assert (row["models"], row["monthly_budget"]) == (["gpt-4o", "gpt-4o-mini"], "20.00")  # as the period ended
    (row,) = open_bundle(export_path(build_export(auditor_user))).json("key_inventory")["rows"]
    assert (row["models"], row["monthly_budget"]) == (["gpt-4o-mini"], "5.00")  # today, after the reduction


def test_a_campaign_that_revokes_at_the_due_date_must_be_confirmed_and_unconfirmed_writes_nothing(
    world, keys, admin_client
):
    due_on = (timezone.now().date() + timedelta(days=10)).isoformat()
    form = {"name": "Revoking review", "due_on": due_on, "on_due": "revoke"}
    before = AuditEvent.objects.count()
    response = admin_client.post(reverse("access_review_open"), form)
    assert response.status_code == 400
    assert "Confirm that keys nobody reviews by the due date are revoked" in response.content.decode()
    assert AccessReview.objects.count() == 0 and AuditEvent.objects.count() == before
    page = admin_client.get(reverse("access_review_open")).content.decode()
    assert "Yes: at the due date, revoke every key nobody has reviewed" in page  # asked before, not after

    assert admin_client.post(reverse("access_review_open"), {**form, "confirm_revoke": "on"}).status_code == 302
    assert AccessReview.objects.get().on_due == AccessReview.OnDue.REVOKE
    escalating = {"name": "Escalating review", "due_on": due_on, "on_due": "escalate"}
    assert admin_client.post(reverse("access_review_open"), escalating).status_code == 302  # nothing to confirm


def test_a_revoke_decision_on_the_page_must_be_confirmed(keys, admin_user, approver_a_client):
    review = open_review(admin_user)
    item = item_of(review, keys["a1"])
    url = reverse("access_review_decide", args=[item.pk])
    before = AuditEvent.objects.count()
    response = approver_a_client.post(url, {"decision": "revoke", "rationale": "the contract ended"})
    assert response.status_code == 400 and "Tick the box to confirm the revocation." in response.content.decode()
    assert not AccessReviewDecision.objects.exists() and AuditEvent.objects.count() == before
    assert VirtualKey.objects.get(pk=keys["a1"].pk).status == VirtualKey.Status.ACTIVE

    response = approver_a_client.post(
        url, {"decision": "revoke", "rationale": "the contract ended", "confirm_revoke": "on"}
    )
    assert response.status_code == 302
    assert AccessReviewDecision.objects.get(item=item).decision == "revoke"
    assert VirtualKey.objects.get(pk=keys["a1"].pk).status == VirtualKey.Status.REVOKING
