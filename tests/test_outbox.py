"""The one outbox (govsite/outbox.py), exercised through two of its users: gateway commands (a team sync
against the sandbox gateway, or a port where nothing listens) and alert deliveries (an email through
Django's test mailbox, or an SMTP server that is not there).

Rows are written inside the test's transaction, so their jobs are not run unless a test says so: that is
a queue that lost them. `django_capture_on_commit_callbacks(execute=True)` runs the jobs a sweep sends.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from budgets import alerts
from budgets.models import AlertDelivery
from keys import services as key_services
from keys.models import GatewayCommand
from tests.permissions import APPROVER_A

pytestmark = pytest.mark.django_db


class GatewayCommands:
    outbox = key_services.COMMANDS

    def create(self, world):
        with transaction.atomic():
            return key_services.gateway_command_issue(
                GatewayCommand.Kind.TEAM_SYNC, team=world.team_a, payload={"max_budget": 10.0}
            )

    def works(self, settings, sandbox):
        settings.LITELLM_URL = sandbox.url
        settings.LITELLM_MASTER_KEY = sandbox.master_key

    def breaks(self, settings, sandbox):
        settings.LITELLM_URL = "http://127.0.0.1:9"  # nothing listens there

    def gave_up_recorded(self, row) -> bool:
        return AuditEvent.objects.filter(action="gateway_command.failed", target_id=str(row.pk)).exists()


class AlertDeliveries:
    outbox = alerts.DELIVERIES

    def create(self, world):
        with transaction.atomic():
            [delivery] = alerts.notify(users=[world.users[APPROVER_A]], title="Budget at 80%", body="Team A spent")
        return delivery

    def works(self, settings, sandbox):
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    def breaks(self, settings, sandbox):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # no SMTP server there

    def gave_up_recorded(self, row) -> bool:
        return True  # a delivery's give-up is its status, shown on the budget page


USERS = [pytest.param(GatewayCommands(), id="gateway-commands"), pytest.param(AlertDeliveries(), id="alert-deliveries")]


@pytest.fixture
def inline(settings):
    settings.REDIS_URL = ""  # jobs run in-process when their transaction commits


def _sweep(user, capture, now=None) -> int:
    with capture(execute=True):
        return user.outbox.sweep(now=now)


@pytest.mark.parametrize("user", USERS)
def test_the_sweeper_sends_what_the_queue_lost_and_it_is_done_once(
    user, world, inline, settings, sandbox, django_capture_on_commit_callbacks
):
    user.works(settings, sandbox)
    row = user.create(world)
    assert row.status in user.outbox.waiting and row.attempts == 0  # its job never ran
    assert _sweep(user, django_capture_on_commit_callbacks) == 1
    row.refresh_from_db()
    assert row.status == user.outbox.done and row.attempts == 1
    assert _sweep(user, django_capture_on_commit_callbacks) == 0  # nothing left to send


@pytest.mark.parametrize("user", USERS)
def test_a_failure_waits_for_its_backoff_then_is_given_up_after_n_attempts(
    user, world, inline, settings, sandbox, django_capture_on_commit_callbacks
):
    user.breaks(settings, sandbox)
    outbox = user.outbox
    row = user.create(world)
    for attempt in range(1, outbox.max_attempts + 1):
        before = timezone.now()
        assert _sweep(user, django_capture_on_commit_callbacks, now=row.next_attempt_at) == 1
        row.refresh_from_db()
        assert row.attempts == attempt and row.last_error
        if attempt < outbox.max_attempts:
            assert row.status == outbox.retry
            wait = row.next_attempt_at - before
            assert outbox.backoff(attempt) <= wait < outbox.backoff(attempt) + timedelta(seconds=30)
            # Not due before its back-off is over.
            assert outbox.sweep(now=row.next_attempt_at - timedelta(seconds=1)) == 0
    assert row.status == outbox.gave_up
    assert user.gave_up_recorded(row)
    assert _sweep(user, django_capture_on_commit_callbacks, now=timezone.now() + timedelta(days=1)) == 0


def test_the_backoff_doubles_up_to_its_cap():
    outbox = key_services.COMMANDS
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3)] == [15, 30, 60]
    assert outbox.backoff(20) == outbox.backoff_cap


@pytest.mark.parametrize("user", USERS)
def test_a_row_whose_worker_died_is_taken_again_once_its_lease_ran_out(
    user, world, inline, settings, sandbox, django_capture_on_commit_callbacks
):
    user.works(settings, sandbox)
    outbox = user.outbox
    row = user.create(world)
    taken = outbox.claim(row.pk)  # a worker takes it, then dies
    assert taken.status == outbox.running and taken.attempts == 1
    assert outbox.claim(row.pk) is None  # nobody else may take it while the lease runs
    assert outbox.sweep() == 0

    # Time passes: the dead worker's lease runs out.
    type(row).objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert _sweep(user, django_capture_on_commit_callbacks) == 1
    row.refresh_from_db()
    assert row.status == outbox.done and row.attempts == 2


@pytest.mark.parametrize("user", USERS)
def test_a_row_whose_worker_died_on_its_last_attempt_is_given_up_by_the_sweeper(
    user, world, inline, settings, sandbox, django_capture_on_commit_callbacks
):
    user.works(settings, sandbox)
    outbox = user.outbox
    row = user.create(world)
    type(row).objects.filter(pk=row.pk).update(
        status=outbox.running, attempts=outbox.max_attempts, next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert outbox.claim(row.pk) is None
    assert _sweep(user, django_capture_on_commit_callbacks) == 0
    row.refresh_from_db()
    assert row.status == outbox.gave_up and "gave up" in row.last_error
    assert user.gave_up_recorded(row)


def test_a_delivery_sent_is_in_the_mailbox_once(world, inline, django_capture_on_commit_callbacks):
    delivery = AlertDeliveries().create(world)
    with django_capture_on_commit_callbacks(execute=True):
        alerts.DELIVERIES.sweep()
        alerts.DELIVERIES.enqueue(delivery.pk)  # delivered twice by the queue: sent once
    assert [m.subject for m in mail.outbox] == ["[govsite] Budget at 80%"]
    delivery.refresh_from_db()
    assert delivery.status == AlertDelivery.Status.SENT and delivery.sent_at is not None
