"""Fixtures for the key lifecycle: model policies and a helper to file requests through the service."""

from decimal import Decimal

import pytest

from govsite.accounts.models import TeamRole
from keys import services
from keys.models import DataClassification, KeyKind, ModelPolicy
from tests.factories import make_user


def classification(key: str) -> DataClassification:
    return DataClassification.objects.get(key=key)


@pytest.fixture
def open_model(db):
    return ModelPolicy.objects.create(
        name="gpt-4o", provider="openai", max_classification=classification("confidential")
    )


@pytest.fixture
def cheap_model(db):
    return ModelPolicy.objects.create(
        name="gpt-4o-mini", provider="openai", max_classification=classification("internal")
    )


@pytest.fixture
def restricted_model(db):
    return ModelPolicy.objects.create(
        name="claude-sonnet-4-5", provider="anthropic", access=ModelPolicy.Access.RESTRICTED,
        max_classification=classification("restricted"),
    )


@pytest.fixture
def second_approver_a(team_a):
    return make_user(email="approver2-a@example.com", teams={team_a: TeamRole.APPROVER})


def request_input(team, models, **overrides) -> services.KeyRequestInput:
    values = {
        "team": team,
        "kind": KeyKind.PERSONAL,
        "purpose": "Claude Code for the payments refactor",
        "data_classification": classification("internal"),
        "models": list(models),
        "monthly_budget": Decimal("50"),
        "expiry_days": 30,
    }
    values.update(overrides)
    return services.KeyRequestInput(**values)


@pytest.fixture
def file_request():
    def _file(requester, team, models, **overrides):
        return services.key_request_create(requester=requester, data=request_input(team, models, **overrides))

    return _file
