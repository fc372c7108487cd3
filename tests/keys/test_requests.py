"""Key requests and decisions: the rules an employee and an approver meet, without the gateway."""

from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse

from audit.models import AuditEvent
from govsite.accounts import permissions
from keys import services
from keys.models import GatewayCommand, KeyKind, KeyRequest, TeamKeyPolicy, VirtualKey
from tests.concurrency import at_once
from tests.factories import make_user
from tests.keys.conftest import classification, request_input

pytestmark = pytest.mark.django_db


def test_a_member_files_a_request_that_waits_for_the_team_approvers(
    member_a_user, approver_a_user, open_model, file_request, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        kr = file_request(member_a_user, member_a_user.memberships.get().team, [open_model])
    assert kr.status == KeyRequest.Status.PENDING
    assert kr.owner == member_a_user
    assert AuditEvent.objects.filter(action="key_request.created", target_id=str(kr.pk)).exists()
    assert [m.to for m in mail.outbox] == [[approver_a_user.email]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"purpose": "   "}, "purpose"),
        ({"monthly_budget": Decimal("0")}, "monthly_budget"),
        ({"monthly_budget": Decimal("-5")}, "monthly_budget"),
        ({"monthly_budget": Decimal("5000000")}, "monthly_budget"),
        ({"expiry_days": 365}, "expiry_days"),
        ({"expiry_days": 0}, "expiry_days"),
        ({"kind": KeyKind.SERVICE, "service_name": "billing-bot"}, "owner"),
        ({"kind": KeyKind.SERVICE, "service_name": ""}, "service_name"),
        ({"data_classification": "restricted"}, "models"),
        ({"rpm_limit": 0}, "rpm_limit"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    member_a_user, team_a, open_model, overrides, field
):
    if overrides.get("data_classification") == "restricted":
        overrides = {"data_classification": classification("restricted")}
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as err:
        services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model], **overrides))
    assert field in err.value.error_dict
    assert KeyRequest.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_a_request_in_another_team_is_refused(member_a_user, team_b, open_model):
    with pytest.raises(ValidationError) as err:
        services.key_request_create(requester=member_a_user, data=request_input(team_b, [open_model]))
    assert "team" in err.value.error_dict


def test_the_form_shows_field_errors_and_writes_nothing(member_a_client, team_a, team_b, open_model):
    base = {
        "team": team_a.pk,
        "kind": "personal",
        "purpose": "Codex for migrations",
        "data_classification": classification("internal").pk,
        "models": [open_model.pk],
        "monthly_budget": "40",
        "expiry_days": "30",
    }
    cases = {
        "team": {"team": team_b.pk},
        "models": {"models": [987654]},
        "purpose": {"purpose": ""},
        "monthly_budget": {"monthly_budget": "0"},
        "expiry_days": {"expiry_days": "400"},
        "owner": {"kind": "service", "service_name": "ci-bot"},
    }
    events = AuditEvent.objects.count()
    for field, change in cases.items():
        response = member_a_client.post(reverse("key_request_create"), {**base, **change})
        assert response.status_code == 400, field
        assert field in response.context["form"].errors, field
    assert KeyRequest.objects.count() == 0
    assert AuditEvent.objects.count() == events
    response = member_a_client.post(reverse("key_request_create"), base)
    assert response.status_code == 302
    assert KeyRequest.objects.count() == 1


def test_a_service_key_has_a_named_owner_who_is_in_the_team(
    member_a_user, approver_a_user, team_a, open_model, file_request
):
    kr = file_request(
        member_a_user, team_a, [open_model], kind=KeyKind.SERVICE, service_name="release-bot", owner=approver_a_user
    )
    assert kr.owner == approver_a_user and kr.service_name == "release-bot"
    outsider = make_user(email="outsider@example.com")
    with pytest.raises(ValidationError) as err:
        file_request(member_a_user, team_a, [open_model], kind=KeyKind.SERVICE, service_name="x", owner=outsider)
    assert "owner" in err.value.error_dict


# --- separation of duties ----------------------------------------------------------------------------


def test_nobody_sees_or_decides_their_own_request(approver_a_user, team_a, open_model, file_request, approver_a_client):
    own = file_request(approver_a_user, team_a, [open_model])
    assert own not in KeyRequest.objects.filter(permissions.key_request_queue_scope(approver_a_user))
    with pytest.raises(PermissionDenied):
        services.key_request_approve(request=own, approver=approver_a_user)
    response = approver_a_client.post(reverse("approval_decide", args=[own.pk]), {"decision": "approve"})
    assert response.status_code == 404
    own.refresh_from_db()
    assert own.status == KeyRequest.Status.PENDING


def test_an_approver_cannot_approve_a_service_key_they_would_own(
    member_a_user, approver_a_user, team_a, open_model, file_request
):
    kr = file_request(
        member_a_user, team_a, [open_model], kind=KeyKind.SERVICE, service_name="bot", owner=approver_a_user
    )
    with pytest.raises(PermissionDenied):
        services.key_request_approve(request=kr, approver=approver_a_user)


def test_an_approver_of_another_team_cannot_decide(member_b_user, team_b, approver_a_user, open_model, file_request):
    kr = file_request(member_b_user, team_b, [open_model])
    with pytest.raises(PermissionDenied):
        services.key_request_approve(request=kr, approver=approver_a_user)


def test_an_auditor_never_decides(member_a_user, team_a, auditor_user, open_model, file_request):
    kr = file_request(member_a_user, team_a, [open_model])
    with pytest.raises(PermissionDenied):
        services.key_request_approve(request=kr, approver=auditor_user)


def test_approval_creates_the_key_and_its_gateway_command_in_one_transaction(
    member_a_user, approver_a_user, team_a, open_model, file_request
):
    kr = file_request(member_a_user, team_a, [open_model])
    key = services.key_request_approve(request=kr, approver=approver_a_user, note="ok")
    kr.refresh_from_db()
    assert kr.status == KeyRequest.Status.APPROVED
    assert key.status == VirtualKey.Status.PROVISIONING
    assert key.allowed_models == ["gpt-4o"] and key.max_budget == Decimal("50")
    assert GatewayCommand.objects.get(key=key).kind == GatewayCommand.Kind.KEY_GENERATE
    actions = set(AuditEvent.objects.filter(team=team_a).values_list("action", flat=True))
    assert {"key_request.approval_recorded", "key_request.approved", "key.provisioning_requested"} <= actions


def test_a_restricted_model_needs_a_second_different_approver_who_is_an_admin(
    member_a_user, approver_a_user, second_approver_a, admin_user, team_a, restricted_model, file_request
):
    kr = file_request(member_a_user, team_a, [restricted_model])
    assert kr.needs_admin_approval
    assert services.key_request_approve(request=kr, approver=approver_a_user) is None
    with pytest.raises(services.InvalidTransition):
        services.key_request_approve(request=kr, approver=approver_a_user)
    # A second team approver is not enough: one of the two must be an admin.
    assert services.key_request_approve(request=kr, approver=second_approver_a) is None
    assert VirtualKey.objects.count() == 0
    key = services.key_request_approve(request=kr, approver=admin_user)
    assert key is not None
    assert set(kr.approvals.values_list("approver__email", flat=True)) == {
        approver_a_user.email,
        second_approver_a.email,
        admin_user.email,
    }


def test_reject_needs_a_note_and_tells_the_requester(
    member_a_user, approver_a_user, team_a, open_model, file_request, django_capture_on_commit_callbacks
):
    kr = file_request(member_a_user, team_a, [open_model])
    with pytest.raises(ValidationError):
        services.key_request_reject(request=kr, approver=approver_a_user, note="")
    with django_capture_on_commit_callbacks(execute=True):
        services.key_request_reject(request=kr, approver=approver_a_user, note="Use the shared eval key")
    kr.refresh_from_db()
    assert kr.status == KeyRequest.Status.REJECTED
    assert mail.outbox[-1].to == [member_a_user.email]
    assert "rejected" in mail.outbox[-1].subject
    with pytest.raises(services.InvalidTransition):
        services.key_request_approve(request=kr, approver=approver_a_user)


def test_only_the_requester_cancels_and_only_while_pending(
    member_a_user, approver_a_user, team_a, open_model, file_request
):
    kr = file_request(member_a_user, team_a, [open_model])
    with pytest.raises(PermissionDenied):
        services.key_request_cancel(request=kr, actor=approver_a_user)
    services.key_request_cancel(request=kr, actor=member_a_user)
    with pytest.raises(services.InvalidTransition):
        services.key_request_cancel(request=kr, actor=member_a_user)
    with pytest.raises(services.InvalidTransition):
        services.key_request_approve(request=kr, approver=approver_a_user)


def test_a_team_auto_approve_rule_approves_small_open_requests_as_policy(
    member_a_user, team_a, open_model, restricted_model, file_request
):
    TeamKeyPolicy.objects.create(team=team_a, auto_approve=True, auto_approve_max_budget=Decimal("100"))
    small = file_request(member_a_user, team_a, [open_model], monthly_budget=Decimal("20"))
    assert small.status == KeyRequest.Status.APPROVED and small.approved_by_policy
    assert AuditEvent.objects.get(action="key_request.approved", target_id=str(small.pk)).actor_label == "policy"
    large = file_request(member_a_user, team_a, [open_model], monthly_budget=Decimal("500"))
    restricted = file_request(member_a_user, team_a, [restricted_model], monthly_budget=Decimal("20"))
    assert large.status == restricted.status == KeyRequest.Status.PENDING


def test_team_policy_caps_expiry(member_a_user, team_a, open_model):
    TeamKeyPolicy.objects.create(team=team_a, max_expiry_days=14)
    with pytest.raises(ValidationError) as err:
        services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model], expiry_days=30))
    assert "14 days" in str(err.value.error_dict["expiry_days"])


@pytest.mark.django_db(transaction=True)
def test_two_approvers_deciding_at_once_produce_exactly_one_key(
    team_a, member_a_user, approver_a_user, second_approver_a, open_model, file_request
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    kr = file_request(member_a_user, team_a, [open_model])
    outcomes = at_once(
        *(
            lambda a=a: services.key_request_approve(request=kr, approver=a)
            for a in (approver_a_user, second_approver_a)
        ),
        expected=services.InvalidTransition,
        held_after_reading=KeyRequest._meta.db_table,
    )
    assert VirtualKey.objects.filter(request=kr).count() == 1
    assert sum(isinstance(o, VirtualKey) for o in outcomes) == 1
    assert sum(isinstance(o, services.InvalidTransition) for o in outcomes) == 1
    assert AuditEvent.objects.filter(action="key_request.approved").count() == 1


@pytest.mark.parametrize("pending", [2, 12])
def test_the_approval_queue_costs_the_same_queries_however_long_it_is(
    pending, team_a, approver_a_client, open_model, django_assert_max_num_queries
):
    for i in range(pending):
        requester = make_user(email=f"asker-{i}@example.com", teams={team_a: "member"})
        services.key_request_create(requester=requester, data=request_input(team_a, [open_model]))
    with django_assert_max_num_queries(17):  # 16, and the requests they approved that wait for someone else
        response = approver_a_client.get(reverse("approval_queue"))
    assert response.status_code == 200
    assert response.content.decode().count('class="card"') == pending


def test_the_queue_shows_the_teams_spend_against_its_budget(
    team_a, admin_user, approver_a_client, member_a_user, open_model, file_request
):
    from django.utils import timezone

    from budgets.models import Budget, DailyRollup

    Budget.objects.create(team=team_a, amount=Decimal("200"), created_by=admin_user)
    DailyRollup.objects.create(
        day=timezone.now().date(), team=team_a, user=member_a_user, requests=3, cost=Decimal("42.50")
    )
    file_request(member_a_user, team_a, [open_model])
    page = approver_a_client.get(reverse("approval_queue")).content.decode()
    assert "has spent $42.50 this month of its $200.00 budget" in page
