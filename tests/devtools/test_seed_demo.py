"""`seed_demo --history`: the demo's keys go through the approval flow to the sandbox gateway, and their
synthetic weeks of traffic through the real ingest, so the dashboards show figures from the first click."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.urls import reverse

from adoption.models import TeamModelDay
from budgets.models import DailyRollup, SpendRecord
from govsite.accounts.models import User
from govsite.devtools.management.commands.seed_demo import DOMAIN
from keys.models import KeyRequest, VirtualKey
from tests.keys.conftest import (
    classification,
    live_gateway,  # noqa: F401 - the sandbox gateway process, for provisioning
)

# Provisioning runs once the approval has committed, as in the demo: real transactions.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_gateway")]


def test_history_keys_are_approved_provisioned_and_their_traffic_booked_once(client):
    classification("public")  # the migration's data classes, which an earlier transactional test's flush removed
    call_command("seed_demo", "--history", stdout=io.StringIO())

    keys = VirtualKey.objects.filter(owner__email__endswith=f"@{DOMAIN}")
    assert keys.count() >= 20 and set(keys.values_list("status", flat=True)) == {VirtualKey.Status.ACTIVE}
    for key in keys.select_related("request"):
        approver = key.request.approvals.get().approver
        assert approver != key.request.requested_by  # nobody approved their own key
    pending = KeyRequest.objects.filter(status=KeyRequest.Status.PENDING)
    assert {r.requested_by.email.split("@")[0] for r in pending} == {"lena", "kofi"}

    ledger = SpendRecord.objects.filter(request_id__startswith="demo-")
    assert ledger.count() > 1000
    assert set(ledger.values_list("key_id", flat=True)) <= set(keys.values_list("pk", flat=True))

    def total(queryset) -> Decimal:
        # SQLite (the demo's database) adds decimals as floats: compare to the ledger's six places.
        return queryset.aggregate(cost=Sum("cost"))["cost"].quantize(Decimal("0.000001"))

    cost = total(ledger)
    assert total(DailyRollup.objects) == cost and total(TeamModelDay.objects) == cost
    assert ledger.filter(cost_source="unpriced").exists() and ledger.filter(cost_source="flat_rate").exists()

    # Run again: nothing more.
    rows = ledger.count()
    call_command("seed_demo", "--history", stdout=io.StringIO())
    assert SpendRecord.objects.count() == rows and keys.count() == VirtualKey.objects.count()

    client.force_login(User.objects.get(email=f"ada@{DOMAIN}"))
    page = client.get(reverse("dashboard_org"))
    assert page.status_code == 200
    period = page.context["dashboard"].period
    shown = total(ledger.filter(time__date__gte=period.start))
    assert page.context["dashboard"].totals["cost"].quantize(Decimal("0.000001")) == shown > 0
