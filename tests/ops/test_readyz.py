"""/healthz is liveness only; /readyz names the dependency that is down: PostgreSQL, Redis, the gateway, or a
pull that has fallen behind. Each dependency is made really unreachable (a closed port), never stood in for."""

from __future__ import annotations

import os
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from budgets.models import PullState
from tests.api.server import start_api_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def dependencies_up(settings, live_gateway):
    """The sandbox gateway, and Redis when the environment has one (CI does)."""
    settings.REDIS_URL = os.environ.get("REDIS_URL", "")
    settings.GATEWAY_TIMEOUT_SECONDS = 2.0
    return settings


def test_ready_when_every_dependency_answers(client, dependencies_up):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert {"database", "gateway", "pull"} <= set(body["checks"])
    assert ("redis" in body["checks"]) == bool(os.environ.get("REDIS_URL"))


def test_healthz_stays_liveness_when_the_gateway_is_down(client, dependencies_up, closed_port):
    dependencies_up.LITELLM_URL = f"http://127.0.0.1:{closed_port}"
    assert client.get("/healthz").status_code == 200


def test_503_names_the_gateway_when_it_is_down(client, dependencies_up, closed_port):
    dependencies_up.LITELLM_URL = f"http://127.0.0.1:{closed_port}"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["gateway"]
    assert str(closed_port) not in response.content.decode()  # where it lives is for the log, not the answer


def test_503_names_redis_when_it_is_down(client, dependencies_up, closed_port):
    dependencies_up.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["redis"]


def test_without_redis_configured_there_is_nothing_to_check(client, dependencies_up):
    dependencies_up.REDIS_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert "redis" not in response.json()["checks"]


def test_503_names_the_pull_when_it_has_fallen_behind(client, dependencies_up):
    dependencies_up.READYZ_MAX_PULL_LAG_SECONDS = 600
    PullState.objects.create(name="spend_logs", watermark=timezone.now() - timedelta(minutes=30))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["pull"]
    assert "behind" in response.json()["checks"]["pull"]["detail"]


def test_a_pull_within_its_lag_is_ready(client, dependencies_up):
    dependencies_up.READYZ_MAX_PULL_LAG_SECONDS = 600
    PullState.objects.create(name="spend_logs", watermark=timezone.now() - timedelta(minutes=2))
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_503_names_the_database_when_postgresql_is_down(tmp_path, closed_port, sandbox_gateway):
    """A real gunicorn whose DATABASE_URL points at a port where no PostgreSQL listens: it is alive
    (/healthz) and not ready (/readyz names the database, and only it)."""
    if connection.vendor != "postgresql":
        if os.environ.get("CI"):
            pytest.fail("CI runs this against PostgreSQL")
        pytest.skip("the server is started against PostgreSQL")
    server = start_api_server(
        tmp_path,
        sandbox_gateway,
        workers=1,
        env={"DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port}/govsite", "GATEWAY_TIMEOUT_SECONDS": "2"},
    )
    try:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        response = httpx.get(f"{server.url}/readyz", timeout=30)
        assert response.status_code == 503, server.tail()
        body = response.json()
        assert body["failed"] == ["database"]
        assert body["checks"]["gateway"]["ok"] is True
        assert body["checks"]["pull"]["ok"] is False  # unknown without the database, not counted as a second fault
    finally:
        server.stop()


def test_readyz_is_get_only(client, dependencies_up):
    assert client.post("/readyz").status_code == 405


def test_the_command_runs_the_same_checks_for_the_worker_and_cron(dependencies_up, closed_port):
    from django.core.management import CommandError, call_command

    call_command("readyz", stdout=open(os.devnull, "w"))  # noqa: SIM115
    dependencies_up.LITELLM_URL = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(CommandError, match="not ready: gateway"):
        call_command("readyz", stdout=open(os.devnull, "w"))  # noqa: SIM115
