"""/metrics: django-prometheus' families and govsite's own, computed from the database at scrape time; only a
scraper with the token or from an allowed network is answered."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from budgets import services as budget_services
from budgets.ingest import ingest_spend_rows
from budgets.models import AlertDelivery, PullState
from budgets.pull import spend_pull_run
from govsite.accounts.models import SlackMessage
from keys.models import GatewayCommand
from tests.factories import SpendLogRowFactory

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_each_govsite_metric_is_exposed_with_what_the_database_holds(client, team_a):
    now = timezone.now()
    # Two requests today, one of them on a model the price map does not know; one row that cannot be read.
    priced = SpendLogRowFactory(start_time=now, spend=0.25)
    unpriced = SpendLogRowFactory(start_time=now, model_group="acme-internal-llm", model="acme-internal-llm")
    unreadable = SpendLogRowFactory(start_time=now)
    unreadable["prompt_tokens"] = {"n": 3}
    result = ingest_spend_rows([priced, unpriced, unreadable], "pull")
    assert (result.inserted, result.rejected_count) == (2, 1)
    PullState.objects.create(name="spend_logs", watermark=now - timedelta(seconds=90), failures=3)
    GatewayCommand.objects.create(kind="key.generate", created_at=now - timedelta(minutes=7))
    GatewayCommand.objects.create(kind="key.generate", created_at=now - timedelta(minutes=1))
    GatewayCommand.objects.create(kind="team.sync", status="done")
    AlertDelivery.objects.create(channel="slack", subject="s", body="b", team=team_a, status="failed")
    AlertDelivery.objects.create(channel="email", subject="s", body="b", status="gave_up")
    SlackMessage.objects.create(team=team_a, event="key_request.waiting", text="t", created_at=now - timedelta(60))
    token, _ = budget_services.ingest_token_create(actor=None, name="gateway-1")
    budget_services.ingest_token_note_spool(token=token, report=f"4 {int(time.time()) - 300}")

    samples = scrape(client)

    assert 90 <= value(samples, "govsite_spend_pull_lag_seconds") < 90 + 60
    assert value(samples, "govsite_spend_pull_failures") == 3
    assert value(samples, "govsite_ledger_rows_booked_total") == 2
    assert value(samples, "govsite_ledger_rows_quarantined", status="held") == 1
    assert value(samples, "govsite_ledger_unpriced_share", window="today") == 0.5
    assert value(samples, "govsite_outbox_depth", outbox="gateway_command", kind="key.generate") == 2
    assert ("govsite_outbox_depth", (("kind", "team.sync"), ("outbox", "gateway_command"))) not in samples
    oldest = value(samples, "govsite_outbox_oldest_pending_seconds", outbox="gateway_command", kind="key.generate")
    assert 7 * 60 <= oldest < 8 * 60
    assert value(samples, "govsite_outbox_depth", outbox="alert_delivery", kind="slack") == 1
    assert value(samples, "govsite_outbox_depth", outbox="slack_message", kind="key_request.waiting") == 1
    assert value(samples, "govsite_outbox_gave_up", outbox="alert_delivery") == 1
    assert value(samples, "govsite_alert_deliveries_failing", channel="slack", status="failed") == 1
    assert value(samples, "govsite_alert_deliveries_failing", channel="email", status="gave_up") == 1
    assert value(samples, "govsite_callback_spool_files", token="gateway-1") == 4
    assert 300 <= value(samples, "govsite_callback_spool_oldest_seconds", token="gateway-1") < 360
    # django-prometheus' own families: requests, and the database and cache (instrumented engines by default)
    names = {name for name, _ in samples}
    assert "django_http_requests_before_middlewares_total" in names
    assert any(name.startswith("django_db_execute_total") for name in names)


def test_an_empty_install_scrapes_without_a_pull_lag(client):
    samples = scrape(client)
    assert not any(name == "govsite_spend_pull_lag_seconds" for name, _ in samples)
    assert value(samples, "govsite_ledger_rows_booked_total") == 0
    assert value(samples, "govsite_ledger_unpriced_share", window="7d") == 0


@pytest.mark.django_db(transaction=True)
def test_a_stuck_pull_shows_its_lag_growing(client, settings, sandbox, closed_port):
    settings.LITELLM_URL, settings.LITELLM_MASTER_KEY = sandbox.url, sandbox.master_key
    settings.GATEWAY_TIMEOUT_SECONDS, settings.REDIS_URL = 2.0, ""
    assert not spend_pull_run().error  # caught up

    settings.LITELLM_URL = f"http://127.0.0.1:{closed_port}"  # the gateway goes away: every pull fails
    assert spend_pull_run().error
    first = scrape(client)
    time.sleep(2.5)
    assert spend_pull_run().error
    second = scrape(client)

    assert value(second, "govsite_spend_pull_lag_seconds") > value(first, "govsite_spend_pull_lag_seconds")
    assert value(second, "govsite_spend_pull_lag_seconds") >= 1
    assert (value(first, "govsite_spend_pull_failures"), value(second, "govsite_spend_pull_failures")) == (1, 2)


# --- who may scrape ------------------------------------------------------------------------------------------


def test_an_address_outside_the_allowed_networks_is_refused(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert "govsite_" not in response.content.decode()


def test_the_token_lets_a_scraper_in_from_anywhere_and_a_wrong_one_does_not(client, settings):
    settings.METRICS_TOKEN = "metrics-token-0123456789"
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    allowed = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789")
    assert allowed.status_code == 200 and b"govsite_ledger_rows_booked_total" in allowed.content


def test_a_configured_network_lets_its_scrapers_in(client, settings):
    import ipaddress

    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_a_signed_in_admin_is_not_a_scraper(admin_client, settings):
    settings.METRICS_ALLOWED_NETWORKS = []
    assert admin_client.get("/metrics").status_code == 403


def test_a_scrape_makes_as_many_queries_with_many_rows_as_with_few(client, team_a):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(client)
        return len(captured)

    GatewayCommand.objects.create(kind="key.generate")
    scrape(client)  # the rows booked before today are summed once, then kept a few minutes
    few = queries()
    for n in range(30):
        GatewayCommand.objects.create(kind=["key.generate", "key.update", "team.sync"][n % 3])
        SlackMessage.objects.create(team=team_a, event=f"event.{n % 4}", text="t")
        AlertDelivery.objects.create(channel="email", subject="s", body="b", status="failed")
    assert queries() == few <= 16


def test_the_example_alert_rules_only_use_metrics_govsite_exposes(client, team_a):
    """deploy/prometheus/govsite-alerts.yml: valid rule groups whose govsite_* series all exist on /metrics."""
    import re
    from pathlib import Path

    import yaml
    from django.conf import settings

    rules = yaml.safe_load((Path(settings.BASE_DIR) / "deploy/prometheus/govsite-alerts.yml").read_text())
    # Rows of every kind, so that every labelled family has a series.
    PullState.objects.create(name="spend_logs", watermark=timezone.now())
    GatewayCommand.objects.create(kind="key.generate")
    token, _ = budget_services.ingest_token_create(actor=None, name="gw")
    budget_services.ingest_token_note_spool(token=token, report=f"1 {int(time.time())}")
    scrape(client)  # a response for django-prometheus' response families
    samples = scrape(client)
    exposed = {name for name, _ in samples}
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
            for name in re.findall(r"\b(govsite_\w+|django_\w+)", rule["expr"]):
                assert name in exposed, f"{rule['alert']} uses {name}, which /metrics does not expose"


def test_rows_booked_count_today_at_once_and_late_rows_of_past_days_at_the_next_refresh(client):
    from django.core.cache import cache

    now = timezone.now()
    ingest_spend_rows([SpendLogRowFactory(start_time=now - timedelta(days=3))], "pull")
    assert value(scrape(client), "govsite_ledger_rows_booked_total") == 1
    ingest_spend_rows([SpendLogRowFactory(start_time=now)], "push")
    assert value(scrape(client), "govsite_ledger_rows_booked_total") == 2  # today's: at once
    ingest_spend_rows([SpendLogRowFactory(start_time=now - timedelta(days=2))], "pull")  # a late row
    assert value(scrape(client), "govsite_ledger_rows_booked_total") == 2  # never less than before
    cache.clear()  # what the refresh (BOOKED_BEFORE_SECONDS) does
    assert value(scrape(client), "govsite_ledger_rows_booked_total") == 3
