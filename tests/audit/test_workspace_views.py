"""The auditor workspace as an auditor sees it: every page readable, export and sampling allowed (reads),
every write refused with 403 and nothing written; members and approvers kept out of the evidence."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessReviewDecision, AuditEvent, EvidenceExport, EvidenceSample
from tests.audit.conftest import build_export, direct_key
from tests.audit.url_cases import EXPORTERS
from tests.permissions import AUDITOR, MEMBER_A, all_cases

pytestmark = pytest.mark.django_db

WORKSPACE = {
    "evidence_export_list",
    "evidence_export_start",
    "evidence_export_detail",
    "evidence_export_download",
    "sample_list",
    "sample_draw",
    "sample_detail",
    "access_review_list",
    "access_review_open",
    "access_review_detail",
    "access_review_sign_off",
    "access_review_queue",
    "access_review_decide",
    "leaver_report",
}


def _cases():
    return [case for case in all_cases() if case.name in WORKSPACE]


def test_every_workspace_url_has_a_permission_row():
    assert {case.name for case in _cases()} == WORKSPACE


def test_auditors_read_every_workspace_page_and_may_export_and_sample(world):
    client = world.client(AUDITOR)
    for case in _cases():
        if AUDITOR not in case.allowed:
            continue
        before = AuditEvent.objects.count()
        response = case.call(client, world, world.team_a)
        assert response.status_code == case.expected_ok, f"auditor on {case.id}: {response.status_code}"
        if case.method == "post":  # export and sampling: allowed, and recorded
            assert AuditEvent.objects.count() > before
    assert EvidenceExport.objects.filter(requested_by=world.users[AUDITOR]).exists()
    assert EvidenceSample.objects.filter(drawn_by=world.users[AUDITOR]).exists()


def test_every_workspace_write_url_answers_403_to_auditors_and_nothing_is_written(world):
    writes = [case for case in _cases() if case.is_write]
    assert {case.name for case in writes} == {"access_review_open", "access_review_sign_off", "access_review_decide"}
    client = world.client(AUDITOR)
    for case in writes:
        url = case.url(world, world.team_a)  # the row's objects are made before counting
        before = (AuditEvent.objects.count(), AccessReviewDecision.objects.count())
        response = case.call(client, world, world.team_a, url)
        assert response.status_code == 403, f"auditor on {case.id}: {response.status_code}"
        assert (AuditEvent.objects.count(), AccessReviewDecision.objects.count()) == before


def test_members_cannot_reach_any_evidence(world):
    client = world.client(MEMBER_A)
    for case in _cases():
        if case.allowed != EXPORTERS:
            continue
        before = AuditEvent.objects.count()
        assert case.call(client, world, world.team_a).status_code == 403, case.id
        assert AuditEvent.objects.count() == before
    member = world.users[MEMBER_A]
    assert not EvidenceExport.objects.filter(requested_by=member).exists()
    assert not EvidenceSample.objects.filter(drawn_by=member).exists()


def test_the_export_list_shows_each_export_with_its_status_and_failed_checks(
    world, auditor_user, auditor_client, django_assert_max_num_queries
):
    direct_key(world.team_a, world.users["member_a"], approver=world.users["member_a"])  # self-approved
    done = build_export(auditor_user)
    assert done.failed_checks == 2
    with django_assert_max_num_queries(10):
        html = auditor_client.get(reverse("evidence_export_list")).content.decode()
    assert f"#{done.pk}" in html and "Done" in html and reverse("evidence_export_download", args=[done.pk]) in html
    detail = auditor_client.get(reverse("evidence_export_detail", args=[done.pk])).content.decode()
    assert "listed first in summary.html" in detail and done.sha256 in detail
    assert f"verify_evidence {done.download_name}" in detail


def test_the_sample_page_offers_a_bundle_with_the_same_seed(world, auditor_client):
    direct_key(world.team_a, world.users["member_a"], approver=world.users["approver_a"])
    today = timezone.now().date().isoformat()
    response = auditor_client.post(
        reverse("sample_draw"), {"period_start": today, "period_end": today, "size": 1, "seed": "reuse-me"}
    )
    html = auditor_client.get(response.url).content.decode()
    assert 'value="reuse-me"' in html and reverse("evidence_export_start") in html
