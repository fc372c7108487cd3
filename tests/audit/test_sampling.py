"""Samples of key creations: reproducible from seed and period, shown with their request, justification,
approvals and provisioning events, the same in the bundle, and bad sizes refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from audit import services as audit_services
from audit.models import AuditEvent, EvidenceSample
from keys.models import VirtualKey
from tests.audit.conftest import approved_key, build_export, export_path, provisioned
from tests.factories import VirtualKeyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def population(world, open_model):
    """Twelve keys created today through the services, and two created last week."""
    member, approver = world.users["member_a"], world.users["approver_a"]
    keys = [
        provisioned(approved_key(member, approver, world.team_a, [open_model], purpose=f"Task {n}")) for n in range(12)
    ]
    for _ in range(2):
        VirtualKeyFactory(
            team=world.team_a, owner=member, approved_by=approver, created_at=timezone.now() - timedelta(days=7)
        )
    return keys


def draw(actor, size, seed="", **kwargs):
    today = timezone.now().date()
    kwargs.setdefault("period_start", today)
    kwargs.setdefault("period_end", today)
    return audit_services.evidence_sample_draw(actor=actor, size=size, seed=seed, **kwargs)


def test_the_same_seed_and_period_draw_the_same_keys_in_the_same_order(population, auditor_user):
    first = draw(auditor_user, 5, seed="q3-2026")
    again = draw(auditor_user, 5, seed="q3-2026")
    other = draw(auditor_user, 5, seed="another-seed")
    assert first.key_ids == again.key_ids and len(set(first.key_ids)) == 5
    assert other.key_ids != first.key_ids
    assert first.population == 12  # last week's keys are outside the period
    assert set(first.key_ids) <= {key.pk for key in population}
    event = AuditEvent.objects.get(action="evidence.sample_drawn", target_id=str(first.pk))
    assert event.actor == auditor_user and event.data["seed"] == "q3-2026" and event.data["key_ids"] == first.key_ids


def test_a_sample_without_a_seed_gets_one_that_reproduces_it(population, auditor_user):
    sample = draw(auditor_user, 4)
    assert len(sample.seed) == 16
    assert draw(auditor_user, 4, seed=sample.seed).key_ids == sample.key_ids


def test_the_sample_page_shows_each_keys_request_justification_approvals_and_provisioning(
    population, auditor_client, django_assert_max_num_queries
):
    response = auditor_client.post(
        reverse("sample_draw"),
        {"period_start": timezone.now().date(), "period_end": timezone.now().date(), "size": 3, "seed": "page"},
    )
    sample = EvidenceSample.objects.get()
    assert response.status_code == 302 and response.url == reverse("sample_detail", args=[sample.pk])
    with django_assert_max_num_queries(25):
        page = auditor_client.get(response.url)
    html = page.content.decode()
    for position, key_id in enumerate(sample.key_ids, start=1):
        key = VirtualKey.objects.get(pk=key_id)
        assert f"{position}. {key.alias}" in html
        assert key.request.purpose in html
    assert "approve by approver-a@example.com" in html
    assert "key.provisioning_requested" in html and "key_request.created" in html and "key_request.approved" in html
    assert html.count("checks pass") == 3


def test_the_bundle_holds_the_same_sample_for_the_same_seed(population, auditor_user, open_bundle):
    sample = draw(auditor_user, 6, seed="bundle-seed")
    export = build_export(auditor_user, sample_size=6, sample_seed="bundle-seed")
    bundle = open_bundle(export_path(export))
    rows = bundle.csv("samples")
    assert [int(row["key_id"]) for row in rows] == sample.key_ids
    assert [int(row["position"]) for row in rows] == [1, 2, 3, 4, 5, 6]
    assert bundle.manifest()["sample"]["key_ids"] == sample.key_ids
    assert bundle.manifest()["sample"]["population"] == 12
    first = bundle.json("samples")["rows"][0]
    assert first["justification"].startswith("Task ")
    assert [a["approver"] for a in first["approvals"]] == ["approver-a@example.com"]
    assert {"key_request.created", "key_request.approved", "key.provisioning_requested"} <= {
        e["action"] for e in first["events"]
    }


@pytest.mark.parametrize(
    ("size", "message"),
    [(0, "Draw at least one key."), (13, "Only 12 keys were created from"), (-3, "Draw at least one key.")],
)
def test_a_sample_size_of_zero_or_larger_than_the_population_is_refused(population, auditor_user, size, message):
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        draw(auditor_user, size)
    assert message in refused.value.message_dict["size"][0]
    assert EvidenceSample.objects.count() == 0 and AuditEvent.objects.count() == before


def test_a_bad_sample_through_the_page_shows_the_error_and_writes_nothing(population, auditor_client):
    today = timezone.now().date()
    before = AuditEvent.objects.count()
    response = auditor_client.post(reverse("sample_draw"), {"period_start": today, "period_end": today, "size": 0})
    assert response.status_code == 400 and "Draw at least one key." in response.content.decode()
    response = auditor_client.post(
        reverse("sample_draw"), {"period_start": today, "period_end": today - timedelta(days=1), "size": 2}
    )
    assert response.status_code == 400 and "The period ends before it starts." in response.content.decode()
    assert EvidenceSample.objects.count() == 0 and AuditEvent.objects.count() == before


def test_a_period_with_no_key_created_cannot_be_sampled(auditor_user):
    with pytest.raises(ValidationError, match="nothing to sample"):
        draw(auditor_user, 1)
    assert EvidenceSample.objects.count() == 0


def test_members_and_approvers_cannot_draw_samples(population, member_a_user, approver_a_user):
    for user in (member_a_user, approver_a_user):
        with pytest.raises(PermissionDenied):
            draw(user, 1)
    assert EvidenceSample.objects.count() == 0
