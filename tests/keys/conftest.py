"""Fixtures for the key lifecycle: model policies and a helper to file requests through the service."""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection

from govsite.accounts.models import TeamRole
from keys import services
from keys.models import KeyKind, ModelPolicy
from tests.factories import classification, make_user


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
        name="claude-sonnet-4-5",
        provider="anthropic",
        access=ModelPolicy.Access.RESTRICTED,
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


# --- a live gateway and a real RQ worker ---------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def chat(gateway_url: str, secret: str, model: str = "gpt-4o", **extra) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/chat/completions",
        headers={"Authorization": f"Bearer {secret}", "User-Agent": "claude-cli/2.0.1"},
        json={"model": model, "messages": [{"role": "user", "content": "hello"}], **extra},
        timeout=30,
    )


@pytest.fixture
def live_gateway(sandbox_gateway, sandbox, settings):
    """Point govsite at the sandbox gateway process; jobs run in-process unless a test asks for RQ."""
    settings.LITELLM_URL = sandbox_gateway.url
    settings.LITELLM_MASTER_KEY = sandbox_gateway.master_key
    settings.GATEWAY_TIMEOUT_SECONDS = 10.0
    settings.REDIS_URL = ""
    return sandbox_gateway


@pytest.fixture
def redis_queue(settings, live_gateway):
    """Jobs go through a real Redis (REDIS_URL, as CI sets it); the test's Redis database starts empty."""
    import redis

    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set")
    conn = redis.Redis.from_url(url)
    try:
        conn.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not reachable")
    conn.flushdb()
    settings.REDIS_URL = url
    settings.RQ_QUEUES = {"default": {"URL": url, "DEFAULT_TIMEOUT": 300}}
    yield conn
    conn.flushdb()


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def rq_worker(transactional_db, redis_queue, live_gateway, tmp_path):
    """A real `manage.py rqworker` process on the test database, the test Redis and the sandbox. Its log is
    `rq_worker.log` (a file, not a pipe nobody reads: a full pipe would stop the worker mid-test)."""
    log_path = tmp_path / "rqworker.log"
    if connection.vendor != "postgresql":
        pytest.skip("the worker process shares the test database, which needs PostgreSQL")

    def start():
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": os.environ["REDIS_URL"],
            "LITELLM_URL": live_gateway.url,
            "LITELLM_MASTER_KEY": live_gateway.master_key,
            "SECRET_KEY": django_settings.SECRET_KEY,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "localhost",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        return subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "default"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("ab"),
        )

    class Worker:
        log = log_path

        def __init__(self):
            self.process = start()

        def kill(self):
            self.process.kill()
            self.process.wait(10)

        def restart(self):
            self.kill()
            self.process = start()

    worker = Worker()
    yield worker
    worker.kill()
