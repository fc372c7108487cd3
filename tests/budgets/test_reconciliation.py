"""The reconciliation page sets the gateway's spend against the ledger's cost and counts how each
row was priced."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from budgets.ingest import ingest_spend_rows
from keys.models import ModelPolicy
from tests.budgets.conftest import spend_row
from tests.factories import VirtualKeyFactory
from tests.keys.conftest import classification

pytestmark = pytest.mark.django_db


def test_computed_flat_rate_and_unpriced_rows_are_counted_per_key(team_a, member_a_user, admin_client, finance_client):
    ModelPolicy.objects.create(
        name="kimi-k2.5", provider="moonshot", flat_rate=True, max_classification=classification("internal")
    )
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    now = datetime.now(UTC)
    rows = [
        spend_row(api_key=key.token_hash, model_group="gpt-4o", spend=0.0, start_time=now),  # gateway said $0
        spend_row(api_key=key.token_hash, model_group="kimi-k2.5", spend=0.01, start_time=now),
        spend_row(api_key=key.token_hash, model_group="acme-internal-llm", spend=0.0, start_time=now),
    ]
    assert ingest_spend_rows(rows, "pull").inserted == 3
    for client in (admin_client, finance_client):
        response = client.get(reverse("reconciliation"))
        assert response.status_code == 200
        row = next(r for r in response.context["page"].object_list if r.get("key_id") == key.pk)
        assert (row["computed"], row["flat_rate"], row["unpriced"]) == (1, 1, 1)
        assert response.context["totals"]["unpriced"] == 1
        assert "1 unpriced" in response.content.decode()
