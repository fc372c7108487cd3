"""The month-end chargeback: spend per cost centre and team against the month before, unpriced and flat-rate
apart; a closed month's figures stay frozen and late rows appear as the next month's adjustments."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from budgets.finops import chargeback
from budgets.ingest import ingest_spend_rows
from govsite.errors import InvalidTransition
from tests.budgets.conftest import spend_row
from tests.budgets.finops.seed import MONTH, at, seed_month

pytestmark = pytest.mark.django_db
JANUARY, MARCH = date(2026, 1, 1), date(2026, 3, 1)


def _line(report, team_name):
    return next(line for line in report.lines if line.team_name == team_name)


@pytest.fixture
def seeded():
    platform_key, research_key = seed_month()
    # January: Platform spent 0.01, so February's change is measured against it.
    ingest_spend_rows(
        [spend_row(api_key=platform_key.token_hash, spend=0.01, start_time=at(15, month=JANUARY))], "pull"
    )
    return platform_key, research_key


def test_the_report_shows_spend_per_cost_centre_and_team_with_the_change_and_unpriced_and_flat_rate_apart(seeded):
    report = chargeback.chargeback_report(month=MONTH)
    assert not report.is_closed
    platform, research = _line(report, "Platform"), _line(report, "Research")
    assert (platform.cost_centre, research.cost_centre) == ("CC-100", "CC-200")
    assert platform.month.cost == Decimal("0.0252") and platform.month.requests == 4
    assert platform.previous.cost == Decimal("0.01") and platform.change == Decimal("0.0152")
    assert platform.change_percent == Decimal("152.0")
    assert research.month.cost == Decimal("0.05")  # the cache hit, the flat rate and the unpriced rows add 0
    assert (research.month.unpriced, research.month.flat_rate, research.month.requests) == (2, 1, 5)
    assert research.change_percent is None  # nothing the month before
    unmanaged = _line(report, chargeback.NO_TEAM)
    assert unmanaged.month.cost == Decimal("0.001")
    assert report.total.month.cost == Decimal("0.0762")
    assert [c.cost_centre for c in report.centres] == ["CC-100", "CC-200", ""]


def test_a_closed_month_does_not_change_when_late_rows_arrive_they_are_next_months_adjustments(seeded, finance_user):
    platform_key, _ = seeded
    close = chargeback.chargeback_month_close(actor=finance_user, month=MONTH, note="month-end")
    before = chargeback.chargeback_report(month=MONTH)
    assert before.is_closed and before.close == close

    # A request of 27 February the gateway wrote late, booked after the close.
    late = spend_row(api_key=platform_key.token_hash, spend=0.5, start_time=at(27))
    assert ingest_spend_rows([late], "pull").inserted == 1

    after = chargeback.chargeback_report(month=MONTH)
    assert _line(after, "Platform").month == _line(before, "Platform").month
    assert after.total.month.cost == Decimal("0.0762")
    march = chargeback.chargeback_report(month=MARCH)
    platform = _line(march, "Platform")
    assert platform.adjustment.cost == Decimal("0.5") and platform.adjustment.requests == 1
    assert platform.previous.cost == Decimal("0.0252")  # February as it was closed
    assert march.total.adjustment.cost == Decimal("0.5")

    # Closing March freezes its adjustments too; a later late February row no longer changes March.
    chargeback.chargeback_month_close(actor=finance_user, month=MARCH)
    ingest_spend_rows([spend_row(api_key=platform_key.token_hash, spend=0.25, start_time=at(26))], "pull")
    assert _line(chargeback.chargeback_report(month=MARCH), "Platform").adjustment.cost == Decimal("0.5")


def test_reopening_unfreezes_the_month_and_both_decisions_are_audited(seeded, finance_user, admin_user):
    platform_key, _ = seeded
    close = chargeback.chargeback_month_close(actor=finance_user, month=MONTH)
    ingest_spend_rows([spend_row(api_key=platform_key.token_hash, spend=0.5, start_time=at(27))], "pull")
    with pytest.raises(ValidationError) as error:
        chargeback.chargeback_month_reopen(actor=admin_user, month=MONTH, reason="  ")
    assert "reason" in error.value.message_dict
    chargeback.chargeback_month_reopen(actor=admin_user, month=MONTH, reason="a late provider invoice")
    reopened = chargeback.chargeback_report(month=MONTH)
    assert not reopened.is_closed and _line(reopened, "Platform").month.cost == Decimal("0.5252")
    events = AuditEvent.objects.filter(target_id=str(close.pk)).order_by("pk")
    assert [e.action for e in events] == ["chargeback.month_closed", "chargeback.month_reopened"]
    assert events[0].data["cost"] == "0.076200000" and events[1].data["reason"] == "a late provider invoice"
    with pytest.raises(InvalidTransition):
        chargeback.chargeback_month_reopen(actor=admin_user, month=MONTH, reason="again")


def test_who_may_close_and_what_cannot_be_closed(seeded, auditor_user, finance_user):
    with pytest.raises(PermissionDenied):
        chargeback.chargeback_month_close(actor=auditor_user, month=MONTH)
    with pytest.raises(ValidationError):  # the month has not ended
        chargeback.chargeback_month_close(actor=finance_user, month=timezone.now().date())
    chargeback.chargeback_month_close(actor=finance_user, month=MONTH)
    with pytest.raises(InvalidTransition):
        chargeback.chargeback_month_close(actor=finance_user, month=MONTH)
    chargeback.chargeback_month_close(actor=finance_user, month=MARCH)
    with pytest.raises(ValidationError, match="first"):  # March's adjustments were frozen against February
        chargeback.chargeback_month_reopen(actor=finance_user, month=MONTH, reason="fix")
    assert not AuditEvent.objects.filter(action="chargeback.month_closed", actor_label=auditor_user.email).exists()


def test_the_page_csv_and_printable_page(seeded, finance_client, auditor_client):
    url = reverse("chargeback")
    page = auditor_client.get(url, {"month": "2026-02"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "CC-100" in body and "Platform" in body and "Open" in body
    assert "Close February 2026" not in body  # auditors read only
    assert "Close February 2026" in finance_client.get(url, {"month": "2026-02"}).content.decode()
    rows = list(
        csv.DictReader(io.StringIO(finance_client.get(url, {"month": "2026-02", "format": "csv"}).content.decode()))
    )
    platform = next(row for row in rows if row["team"] == "Platform")
    assert (platform["cost_usd"], platform["previous_month_cost_usd"], platform["status"]) == (
        "0.025200000",
        "0.010000000",
        "open",
    )
    research = next(row for row in rows if row["team"] == "Research")
    assert (research["unpriced_requests"], research["flat_rate_requests"]) == ("2", "1")
    printable = finance_client.get(url, {"month": "2026-02", "print": "1"})
    assert printable.status_code == 200 and "LLM chargeback — February 2026" in printable.content.decode()
    assert auditor_client.get(url, {"month": "2026-13"}).status_code == 400


def test_closing_from_the_page_freezes_and_reopening_asks_why(seeded, finance_client):
    response = finance_client.post(reverse("chargeback_close", args=["2026-02"]), {"note": "done"})
    assert response.status_code == 302
    assert chargeback.chargeback_report(month=MONTH).is_closed
    response = finance_client.post(reverse("chargeback_reopen", args=["2026-02"]), {"reason": ""})
    assert chargeback.chargeback_report(month=MONTH).is_closed
    finance_client.post(reverse("chargeback_reopen", args=["2026-02"]), {"reason": "late invoice"})
    assert not chargeback.chargeback_report(month=MONTH).is_closed
