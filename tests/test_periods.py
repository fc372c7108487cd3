"""A reversed range of days is an error everywhere, named on the field that ends it, never silently swapped."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.period import Period
from budgets import services as budget_services
from budgets.models import Budget
from govsite.periods import REVERSED, period_validate
from tests.api.helpers import token_client

pytestmark = pytest.mark.django_db


def test_the_rule_refuses_a_reversed_range_and_accepts_one_day():
    period_validate(date(2026, 3, 1), date(2026, 3, 1))
    period_validate(None, date(2026, 3, 1))  # a missing end is each caller's own question
    with pytest.raises(ValidationError) as refused:
        period_validate(date(2026, 3, 2), date(2026, 3, 1), end_field="until")
    assert refused.value.message_dict == {"until": [REVERSED]}


def test_an_audit_period_is_refused_reversed():
    with pytest.raises(ValidationError) as refused:
        Period.checked(date(2026, 3, 2), date(2026, 3, 1), today=date(2026, 4, 1))
    assert refused.value.message_dict == {"period_end": [REVERSED]}


def test_a_custom_budget_period_is_refused_reversed(world):
    with pytest.raises(ValidationError) as refused:
        budget_services.budget_create(
            actor=world.users["admin"],
            team=world.team_a,
            amount=Decimal("10"),
            period=Budget.Period.CUSTOM,
            period_start=date(2026, 3, 2),
            period_end=date(2026, 3, 1),
        )
    assert refused.value.message_dict == {"period_end": [REVERSED]}
    assert not Budget.objects.exists()


def test_the_reconciliation_page_refuses_a_reversed_range_instead_of_swapping_it(admin_client):
    response = admin_client.get(reverse("reconciliation"), {"start": "2026-03-10", "end": "2026-03-01"})
    assert response.status_code == 400
    assert response.context["form"].errors == {"end": [REVERSED]}
    assert REVERSED in response.content.decode()
    assert response.context["start"] <= response.context["end"]  # the page falls back to this month


def test_the_audit_log_filter_and_its_api_refuse_a_reversed_range(admin_user, admin_client):
    page = admin_client.get(reverse("audit_log"), {"date_from": "2026-03-10", "date_to": "2026-03-01"})
    assert page.context["form"].errors == {"date_to": [REVERSED]}
    api = token_client(admin_user, scope="read").get(
        reverse("api_audit_events"), {"date_from": "2026-03-10", "date_to": "2026-03-01"}
    )
    assert api.status_code == 400
    assert api.json()["error"]["fields"] == {"date_to": [REVERSED]}


def test_the_spend_api_refuses_a_reversed_custom_period(admin_user):
    response = token_client(admin_user, scope="read").get(
        reverse("api_spend_summary"), {"period": "custom", "start": "2026-03-10", "end": "2026-03-01"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"end": [REVERSED]}
