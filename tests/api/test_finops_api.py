"""FinOps over the API: a FOCUS export started, built by its job, followed and downloaded; the chargeback read,
closed and reopened; bad input answered 400 naming the field."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from audit.models import AuditEvent
from tests.api.helpers import call, token_client
from tests.budgets.finops.seed import seed_month

pytestmark = pytest.mark.django_db


def test_finance_exports_a_month_as_parquet_and_downloads_it(
    finance_user, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.REDIS_URL, settings.FOCUS_EXPORT_DIR = "", tmp_path
    seed_month()
    client = token_client(finance_user)
    body = {"period_start": "2026-02-01", "period_end": "2026-02-28", "format": "parquet"}
    with django_capture_on_commit_callbacks(execute=True):  # the build job runs as the transaction commits
        response = call(client, "post", reverse("api_focus_exports"), body)
    assert response.status_code == 202, response.json()
    pk = response.json()["id"]
    status = client.get(reverse("api_focus_export_detail", args=[pk])).json()
    assert (status["status"], status["progress"], status["focus_rows"]) == ("done", 100, 8)
    assert status["effective_cost"] == "0.076200000" and status["unpriced_rows"] == 1
    download = client.get(reverse("api_focus_export_download", args=[pk]))
    assert download.status_code == 200
    table = pq.read_table(io.BytesIO(b"".join(download.streaming_content)))
    assert table.num_rows == 8
    assert AuditEvent.objects.filter(action="focus_export.requested", actor_id=finance_user.pk).exists()


def test_a_queued_export_cannot_be_downloaded_yet_and_bad_input_names_the_field(auditor_user):
    client = token_client(auditor_user)
    response = call(
        client, "post", reverse("api_focus_exports"), {"period_start": "2026-02-10", "period_end": "2026-02-01"}
    )
    assert response.status_code == 400 and "period_end" in response.json()["error"]["fields"]
    response = call(
        client,
        "post",
        reverse("api_focus_exports"),
        {"period_start": "2026-02-01", "period_end": "2026-02-02", "format": "xlsx"},
    )
    assert response.status_code == 400 and "format" in response.json()["error"]["fields"]
    response = call(
        client, "post", reverse("api_focus_exports"), {"period_start": "2026-02-01", "period_end": "2026-02-02"}
    )
    pk = response.json()["id"]
    download = client.get(reverse("api_focus_export_download", args=[pk]))
    assert download.status_code == 409 and download.json()["error"]["code"] == "conflict"


def test_the_chargeback_is_read_closed_and_reopened(finance_user, auditor_user):
    seed_month()
    reader = token_client(auditor_user, scope="read")
    report = reader.get(reverse("api_chargeback", args=["2026-02"])).json()
    assert report["closed"] is False and report["total"]["month"]["cost"] == "0.076200000"
    research = next(line for line in report["lines"] if line["team_name"] == "Research")
    assert (research["cost_centre"], research["month"]["unpriced"], research["month"]["flat_rate"]) == ("CC-200", 2, 1)
    assert reader.get(reverse("api_chargeback", args=["2026-13"])).json()["error"]["fields"].keys() == {"month"}

    writer = token_client(finance_user)
    closed = call(writer, "post", reverse("api_chargeback_close", args=["2026-02"]), {"note": "month-end"})
    assert closed.status_code == 200 and closed.json()["closed"] is True
    again = call(writer, "post", reverse("api_chargeback_close", args=["2026-02"]), {})
    assert again.status_code == 409
    no_reason = call(writer, "post", reverse("api_chargeback_reopen", args=["2026-02"]), {})
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]["fields"]
    reopened = call(writer, "post", reverse("api_chargeback_reopen", args=["2026-02"]), {"reason": "late invoice"})
    assert reopened.status_code == 200 and reopened.json()["closed"] is False
    refused = call(token_client(auditor_user), "post", reverse("api_chargeback_close", args=["2026-02"]), {})
    assert refused.status_code == 403
