"""Fixtures for the ledger and budgets: keys known to govsite and the sandbox, spend rows in
LiteLLM's shapes (the real captured samples and the sandbox's `make_spend_row`), a webhook."""

from __future__ import annotations

import copy
import itertools
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.factories import BudgetFactory, SpendLogRowFactory
from tests.keys.conftest import classification, live_gateway, open_model  # noqa: F401  (the key lifecycle's fixtures, shared)

SAMPLES = Path(__file__).resolve().parent / "samples"
_aliases = itertools.count(1)


def sample(name: str) -> dict:
    """A real payload captured from LiteLLM 1.106.2 (see samples/)."""
    return copy.deepcopy(json.loads((SAMPLES / f"{name}.json").read_text()))


def spend_row(**fields) -> dict:
    """A spend-log row in LiteLLM's exact shape."""
    return SpendLogRowFactory(**fields)


@pytest.fixture
def ledger_gateway(sandbox, settings):
    """govsite pointed at the sandbox gateway process; jobs run in-process right after commit."""
    settings.LITELLM_URL = sandbox.url
    settings.LITELLM_MASTER_KEY = sandbox.master_key
    settings.GATEWAY_TIMEOUT_SECONDS = 2.0
    settings.REDIS_URL = ""
    return sandbox


@pytest.fixture
def inline_jobs(settings):
    """Jobs run in-process once the transaction commits (no worker needed)."""
    settings.REDIS_URL = ""
    settings.SITE_URL = "http://govsite.test"


@pytest.fixture
def team_budget(team_a, admin_user):
    def _make(amount="100.00", **fields):
        return BudgetFactory(team=team_a, amount=Decimal(amount), created_by=admin_user, **fields)

    return _make


class _Webhook(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - stdlib name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server = self.server
        with server.lock:
            server.received.append(json.loads(body or b"{}"))
            status = server.statuses.pop(0) if server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"no_service")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    """A local HTTP server standing in for a Slack incoming webhook: it records what it receives and
    answers the statuses queued in `.statuses` (then 200)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    server.received, server.statuses, server.lock = [], [], threading.Lock()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXX"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
