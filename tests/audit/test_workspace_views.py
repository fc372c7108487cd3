"""The auditor workspace as an auditor sees it: every page readable, export and sampling allowed (reads),
every write refused with 403 and nothing written; members and approvers kept out of the evidence."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs

import pytest
from django.urls import reverse
from django.utils import timezone

from audit import reviews
from audit.models import AccessReviewDecision, AuditEvent, EvidenceExport, EvidenceSample
from budgets.models import DailyRollup
from govsite.accounts import services as account_services
from tests.audit.conftest import build_export
from tests.audit.url_cases import EXPORTERS
from tests.factories import VirtualKeyFactory
from tests.permissions import ADMIN, APPROVER_A, AUDITOR, FINANCE, MEMBER_A, all_cases

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
    VirtualKeyFactory(
        team=world.team_a, owner=world.users["member_a"], approved_by=world.users["member_a"]
    )  # self-approved
    done = build_export(auditor_user)
    assert done.failed_checks == 2
    with django_assert_max_num_queries(10):
        html = auditor_client.get(reverse("evidence_export_list")).content.decode()
    assert f"#{done.pk}" in html and "Done" in html and reverse("evidence_export_download", args=[done.pk]) in html
    detail = auditor_client.get(reverse("evidence_export_detail", args=[done.pk])).content.decode()
    assert "listed first in summary.html" in detail and done.sha256 in detail
    assert f"verify_evidence {done.download_name}" in detail


def test_the_sample_page_offers_a_bundle_with_the_same_seed(world, auditor_client):
    VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"], approved_by=world.users["approver_a"])
    today = timezone.now().date().isoformat()
    response = auditor_client.post(
        reverse("sample_draw"), {"period_start": today, "period_end": today, "size": 1, "seed": "reuse-me"}
    )
    html = auditor_client.get(response.url).content.decode()
    assert 'value="reuse-me"' in html and reverse("evidence_export_start") in html


def test_every_workspace_list_says_so_when_it_is_empty(admin_client, auditor_client, approver_a_client):
    empty = {
        "evidence_export_list": "No evidence exported yet.",
        "sample_list": "No sample drawn yet.",
        "access_review_list": "No campaign yet.",
        "leaver_report": "Nobody was deactivated in this period.",
    }
    for name, message in empty.items():
        response = auditor_client.get(reverse(name))
        assert response.status_code == 200 and message in response.content.decode(), name
    for client in (admin_client, approver_a_client):
        assert "No key waits for your review." in client.get(reverse("access_review_queue")).content.decode()


def test_the_review_queue_and_the_campaign_page_come_in_pages(world, admin_user, approver_a_client, auditor_client):
    member, approver = world.users["member_a"], world.users["approver_a"]
    for _ in range(110):
        VirtualKeyFactory(team=world.team_a, owner=member, approved_by=approver)
    review = reviews.access_review_open(
        actor=admin_user, name="Paged", due_on=timezone.now().date() + timedelta(days=7), on_due="escalate"
    )
    queue = reverse("access_review_queue")
    first = approver_a_client.get(queue)
    assert len(first.context["page"].object_list) == 50 and "Page 1 of 3 · 110 in all" in first.content.decode()
    last = approver_a_client.get(queue, {"page": 3})
    assert len(last.context["page"].object_list) == 10
    seen = {item.pk for n in (1, 2, 3) for item in approver_a_client.get(queue, {"page": n}).context["page"]}
    assert seen == set(review.items.values_list("pk", flat=True))  # every key once, none twice
    detail = reverse("access_review_detail", args=[review.pk])
    assert len(auditor_client.get(detail).context["page"].object_list) == 100
    assert len(auditor_client.get(detail, {"page": 2}).context["page"].object_list) == 10


def test_the_leaver_report_comes_in_pages_that_keep_the_period(world, admin_user, auditor_client):
    member = world.users["member_a"]
    for _ in range(105):
        VirtualKeyFactory(team=world.team_a, owner=member, created_at=timezone.now() - timedelta(days=3))
    account_services.user_deactivate(actor=admin_user, user=member, reason="left")
    day = timezone.now().date()
    period = {"period_start": (day - timedelta(days=10)).isoformat(), "period_end": day.isoformat()}
    first = auditor_client.get(reverse("leaver_report"), period)
    html = first.content.decode()
    assert len(first.context["page"].object_list) == 100 and "Page 1 of 2 · 105 in all" in html
    older = re.search(r'href="\?([^"]*)">Older', html)
    assert parse_qs(unescape(older.group(1))) == {**{k: [v] for k, v in period.items()}, "page": ["2"]}
    second = auditor_client.get(reverse("leaver_report"), {**period, "page": 2})
    assert len(second.context["page"].object_list) == 5


def test_the_review_queue_shows_each_keys_owner_last_use_90_day_spend_and_models(world, admin_user, approver_a_client):
    key = VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"], approved_by=world.users["approver_a"])
    yesterday = timezone.now().date() - timedelta(days=1)
    DailyRollup.objects.create(
        day=yesterday, team=world.team_a, key=key, model="gpt-4o", requests=3, cost=Decimal("12.34")
    )
    reviews.access_review_open(
        actor=admin_user, name="Columns", due_on=timezone.now().date() + timedelta(days=7), on_due="escalate"
    )
    html = approver_a_client.get(reverse("access_review_queue")).content.decode()
    for shown in ("member-a@example.com", key.alias, "gpt-4o, gpt-4o-mini", "$12.34", yesterday.isoformat()):
        assert shown in html, shown


def test_a_sample_larger_than_the_population_is_refused_on_the_page_and_nothing_is_written(world, auditor_client):
    VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"], approved_by=world.users["approver_a"])
    today = timezone.now().date().isoformat()
    before = AuditEvent.objects.count()
    response = auditor_client.post(reverse("sample_draw"), {"period_start": today, "period_end": today, "size": 2})
    assert response.status_code == 400
    assert "Only 1 key was created from" in response.content.decode()
    assert EvidenceSample.objects.count() == 0 and AuditEvent.objects.count() == before


def _nav_links(html: str, label: str) -> dict[str, str]:
    nav = re.search(rf'<nav[^>]*aria-label="{label}"[^>]*>(.*?)</nav>', html, re.S)
    return (
        {} if nav is None else {text: href for href, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', nav.group(1))}
    )


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (ADMIN, {"Audit log": "audit_log", "Evidence": "evidence_export_list", "Access reviews": "access_review_list"}),
        (
            AUDITOR,
            {"Audit log": "audit_log", "Evidence": "evidence_export_list", "Access reviews": "access_review_list"},
        ),
        (APPROVER_A, {"Access reviews": "access_review_queue"}),
        (FINANCE, {}),
        (MEMBER_A, {}),
    ],
)
def test_the_main_navigation_links_the_workspace_for_the_roles_that_may_use_it(world, role, expected):
    html = world.client(role).get(reverse("home")).content.decode()
    main = _nav_links(html, "Main")
    shown = {text: href for text, href in main.items() if text in ("Audit log", "Evidence", "Access reviews")}
    assert shown == {text: reverse(name) for text, name in expected.items()}
    for text, href in shown.items():  # and each link opens
        assert world.client(role).get(href).status_code == 200, text


def test_the_workspace_navigation_leads_to_every_workspace_page_and_admins_to_their_review_queue(world):
    pages = {"Audit log", "Evidence exports", "Samples", "Access reviews", "Leavers"}
    for role in (ADMIN, AUDITOR):
        client = world.client(role)
        links = _nav_links(client.get(reverse("evidence_export_list")).content.decode(), "Auditor workspace")
        assert set(links) == (pages | {"Keys to review"} if role == ADMIN else pages), role
        for text, href in links.items():
            assert client.get(href).status_code == 200, (role, text)
