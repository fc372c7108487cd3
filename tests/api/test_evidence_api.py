"""Evidence exports over the API: an auditor starts one, follows it and downloads the bundle; each step audited."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, EvidenceExport
from tests.api.helpers import call, token_client
from tests.audit.url_cases import _export

pytestmark = pytest.mark.django_db


def _period(**overrides):
    today = timezone.now().date()
    return {"period_start": str(today - timedelta(days=30)), "period_end": str(today), **overrides}


def test_an_auditor_starts_an_export_and_follows_it(auditor_user, team_a):
    client = token_client(auditor_user)
    response = call(client, "post", reverse("api_evidence_exports"), _period(teams=[team_a.slug], sample_size=5))
    assert response.status_code == 202, response.json()
    export = response.json()
    assert export["status"] == "queued" and export["filters"]["teams"] == ["Team A"]
    assert export["requested_by"] == auditor_user.email
    event = AuditEvent.objects.get(action="evidence.export_requested")
    assert event.actor_id == auditor_user.pk and event.target_id == str(export["id"])
    status = client.get(reverse("api_evidence_export_detail", args=[export["id"]])).json()
    assert status["progress"] == 0
    listed = client.get(reverse("api_evidence_exports")).json()
    assert [e["id"] for e in listed["results"]] == [export["id"]]
    download = client.get(reverse("api_evidence_export_download", args=[export["id"]]))
    assert download.status_code == 409 and download.json()["error"]["code"] == "conflict"


def test_a_finished_bundle_downloads_as_a_zip_and_the_download_is_audited(world, auditor_user):
    pk = _export(world, world.team_a)["pk"]
    response = token_client(auditor_user, scope="read").get(reverse("api_evidence_export_download", args=[pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert b"".join(response.streaming_content).startswith(b"PK")
    assert EvidenceExport.objects.get(pk=pk).download_name in response["Content-Disposition"]
    assert AuditEvent.objects.filter(action="evidence.downloaded", actor=auditor_user).count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"period_end": "2001-01-01"}, "period_end"),
        ({"period_end": str(timezone.now().date() + timedelta(days=3))}, "period_end"),
        ({"period_start": "last month"}, "period_start"),
        ({"teams": ["no-such-team"]}, "teams"),
        ({"teams": "team-a"}, "teams"),
        ({"sample_size": 5000}, "sample_size"),
        ({"sample_seed": "x" * 65}, "sample_seed"),
        ({"format": "pdf"}, "format"),
    ],
)
def test_bad_export_input_is_a_400_naming_the_field_and_starts_nothing(admin_user, change, field):
    response = call(token_client(admin_user), "post", reverse("api_evidence_exports"), _period(**change))
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not EvidenceExport.objects.exists() and not AuditEvent.objects.exists()


def test_members_and_finance_export_nothing(member_a_user, finance_user):
    for user in (member_a_user, finance_user):
        response = call(token_client(user), "post", reverse("api_evidence_exports"), _period())
        assert response.status_code == 403
    assert not EvidenceExport.objects.exists()
