"""Log lines operators can search: one JSON object per line, with the request, the person and the job;
no secret in any line, whatever the logger and the level."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from govsite.accounts.models import TeamRole
from keys import services as key_services
from keys.models import VirtualKey
from tests.factories import make_user
from tests.keys.conftest import _database_url, request_input

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


@pytest.mark.django_db
def test_every_line_of_a_request_is_json_with_its_request_id_and_person(json_log, admin_client, admin_user):
    response = admin_client.get(reverse("home"), HTTP_X_REQUEST_ID="req-ops-1")
    assert response.status_code == 200
    lines = json_log.lines()
    assert lines, "a request writes at least its access line"
    for line in lines:
        assert {"request_id", "user_id", "job_id", "timestamp", "level", "logger"} <= set(line)
    access = [line for line in lines if line["logger"] == "govsite.request"]
    assert access == [
        {
            **access[0],
            "request_id": "req-ops-1",
            "user_id": admin_user.pk,
            "method": "GET",
            "path": "/",
            "status": 200,
        }
    ]


@pytest.mark.django_db
def test_django_s_own_line_about_a_404_carries_the_request(json_log, admin_client):
    admin_client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-ops-404")
    not_found = [line for line in json_log.lines() if line["logger"] == "django.request"]
    assert not_found and not_found[0]["request_id"] == "req-ops-404"
    assert not_found[0]["level"] == "warning"


@pytest.fixture
def person(team_a):
    # Made before the log is captured: factory-boy's own debug lines name the password it sets.
    return make_user(email="lee@example.com", password=PASSWORD, teams={team_a: TeamRole.MEMBER})


@pytest.mark.django_db(transaction=True)
def test_a_login_a_key_reveal_and_an_api_token_creation_leave_no_secret_in_any_line(
    person, live_gateway, team_a, approver_a_user, open_model, json_log
):
    client = Client()
    login = client.post(reverse("account_login"), {"login": person.email, "password": PASSWORD})
    assert login.status_code == 302

    request = key_services.key_request_create(requester=person, data=request_input(team_a, [open_model]))
    key = key_services.key_request_approve(request=request, approver=approver_a_user)
    key.refresh_from_db()
    assert key.status == VirtualKey.Status.ACTIVE
    reveal = client.post(reverse("key_reveal", args=[key.pk]))
    secret = reveal.context["secret"]
    assert secret.startswith("sk-")

    created = client.post(reverse("settings_api_tokens"), {"name": "nightly export", "scope": "read", "lifetime": 30})
    token = created.context["new_secret"]
    assert token.startswith("gst_")

    lines = json_log.lines()  # every line is JSON
    for needle in (secret, token, PASSWORD, secret[3:], token[4:]):
        assert needle not in json_log.text
    reveal_lines = [line for line in lines if line.get("path") == reverse("key_reveal", args=[key.pk])]
    assert reveal_lines and reveal_lines[0]["user_id"] == person.pk and reveal_lines[0]["request_id"]
    # The approval's gateway command ran as an in-process job: its lines name it.
    job_lines = [line for line in lines if line["job_id"]]
    assert any(line.get("job") == "keys.jobs.run_gateway_command" for line in job_lines)


def test_a_secret_that_reaches_a_line_anyway_is_masked(json_log):
    import logging

    logging.getLogger("tests.ops").warning(
        "calling with %s and Bearer gst_abcdefghijklmnop to https://hooks.slack.com/services/T0/B0/abcdefXYZ",
        "sk-abcdefghijklmnopqrstuvwxyz",
    )
    (line,) = json_log.lines()
    assert "abcdefghijklmnop" not in line["event"] and "abcdefXYZ" not in line["event"]
    assert "sk-[redacted]" in line["event"] and "/services/[redacted]" in line["event"]


@pytest.mark.django_db(transaction=True)
def test_cron_runs_write_json_lines_naming_their_job(json_log, settings, closed_port):
    # The gateway is away: the pull fails and says so, inside its scheduled run.
    settings.LITELLM_URL = f"http://127.0.0.1:{closed_port}"
    settings.GATEWAY_TIMEOUT_SECONDS = 2.0
    settings.REDIS_URL = ""
    call_command("run_schedules", "--once", stdout=open(os.devnull, "w"))  # noqa: SIM115
    lines = json_log.lines()
    pull = [line for line in lines if line["logger"] == "budgets.pull"]
    assert pull, "the failing pull logs a warning"
    assert pull[0]["job"] == "budgets.jobs.pull_spend_logs" and pull[0]["job_id"]
    # A scheduled job that raised is logged with its traceback, under its own run's id.
    failed = [line for line in lines if line["event"].startswith("scheduled job")]
    assert failed and all(line["job_id"] and line["job"].endswith(line["event"].split()[2]) for line in failed)
    assert all("exception" in line for line in failed)


@pytest.mark.django_db(transaction=True)
def test_an_rq_worker_writes_json_lines_with_the_job_id(settings, closed_port):
    """A real `rqworker --burst` process: every line it writes is JSON, and the job's own lines carry its id."""
    import django_rq
    import redis

    url = os.environ.get("REDIS_URL")
    if connection.vendor != "postgresql" or not url:
        if os.environ.get("CI"):
            pytest.fail("CI runs this against PostgreSQL and Redis")
        pytest.skip("the worker shares the test database (PostgreSQL) and needs Redis")
    redis.Redis.from_url(url).flushdb()
    settings.RQ_QUEUES = {"default": {"URL": url, "DEFAULT_TIMEOUT": 300}}
    job = django_rq.get_queue("default").enqueue("budgets.jobs.pull_spend_logs")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": url,
        "LITELLM_URL": f"http://127.0.0.1:{closed_port}",
        "LITELLM_MASTER_KEY": "sk-master-key-that-must-not-appear",
        "GATEWAY_TIMEOUT_SECONDS": "2",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "localhost",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = (result.stdout + result.stderr).splitlines()
    lines = [json.loads(line) for line in output if line.strip()]
    assert lines
    mine = [line for line in lines if line["job_id"] == job.id]
    assert any(line["logger"] == "budgets.pull" for line in mine), output
    assert "sk-master-key-that-must-not-appear" not in result.stderr + result.stdout
    redis.Redis.from_url(url).flushdb()
