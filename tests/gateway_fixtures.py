"""Gateway fixtures: the sandbox gateway as a real process, and a real LiteLLM proxy when one is configured.

Registered from tests/conftest.py (`pytest_plugins = ["tests.gateway_fixtures"]`).

- `sandbox_gateway` (session): `python -m govsite.devtools.sandbox` on a free port with its own SQLite
  file and master key. Offers `.url`, `.master_key`, `.db_path`, `.client()`, `.faults(...)`,
  `.chat(...)` and `.insert_spend_rows(rows)`.
- `sandbox` (function): the same process with its faults cleared before and after the test.
- `live_litellm` (session): a real proxy from LITELLM_URL + LITELLM_MASTER_KEY, skipped when unset.
- `gateway` (function): what the shared client tests run against; the sandbox unless a module
  parametrizes it indirectly with "live" (tests/live/test_live_client.py does).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from govsite.devtools.processes import free_port
from govsite.gateway.client import GatewayClient, GatewayError, NotFound
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
SANDBOX_MASTER_KEY = "sk-sandbox-test-master-key"
STARTUP_TIMEOUT = 60.0  # the sandbox imports litellm (~3 s) before it listens
# LiteLLM writes spend-log rows in batches 10-15 s after the call; the test sandbox batches every 0.3 s so
# the delay is there (a row is not readable the moment its call returns) without slowing the suite.
SPEND_LOG_BATCH_SECONDS = 0.3


def unavailable(why: str):
    """Skip a test whose tool is missing here; in CI (CI=true, as .ci/run runs) that is a failure, not a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must run these tests")
    pytest.skip(why)


@dataclass
class GatewayTarget:
    """A gateway the tests talk to: its URL, master key and what it can do beyond LiteLLM's API."""

    kind: str  # "sandbox" or "live"
    url: str
    master_key: str
    db_path: Path | None = None
    process: subprocess.Popen | None = None
    created_keys: list[str] = field(default_factory=list)
    created_teams: list[str] = field(default_factory=list)
    created_users: list[str] = field(default_factory=list)

    @property
    def is_sandbox(self) -> bool:
        return self.kind == "sandbox"

    def client(self, timeout: float = 10.0) -> GatewayClient:
        return GatewayClient(self.url, self.master_key, timeout)

    def unique(self, prefix: str) -> str:
        """A name no other test run uses, so a shared or real gateway never sees a collision."""
        return f"govsite-test-{prefix}-{uuid.uuid4().hex[:12]}"

    def require_sandbox(self, why: str = "needs the sandbox's fault injection") -> None:
        if not self.is_sandbox:
            pytest.skip(why)

    def faults(self, **spec: Any) -> dict:
        """Make the next admin calls fail or stall: fail_next/status/message, delay_next/seconds, clear."""
        self.require_sandbox()
        response = httpx.post(
            f"{self.url}/sandbox/faults", json=spec, headers={"Authorization": f"Bearer {self.master_key}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def gateway_settings(self, **spec: Any) -> dict:
        """Change what the sandbox's LiteLLM config says: disable_custom_api_keys, database,
        spend_log_batch_seconds."""
        self.require_sandbox("changes the sandbox's configuration")
        headers = {"Authorization": f"Bearer {self.master_key}"}
        response = httpx.post(f"{self.url}/sandbox/settings", json=spec, headers=headers, timeout=10)
        response.raise_for_status()
        return response.json()

    def flush_spend_logs(self) -> int:
        """Write the spend-log rows the sandbox's batch writer holds now, as its next batch would."""
        self.require_sandbox("drives the sandbox's batch writer")
        response = httpx.post(
            f"{self.url}/sandbox/spend-logs/flush", headers={"Authorization": f"Bearer {self.master_key}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()["written"]

    def chat(
        self,
        secret: str,
        model: str = "gpt-4o",
        *,
        stream: bool = False,
        include_usage: bool | None = None,
        user_agent: str = "claude-cli/2.0.1 (external, cli)",
        headers: dict[str, str] | None = None,
        **body: Any,
    ) -> httpx.Response:
        """POST /chat/completions as a coding agent would; a streamed answer is read to the end."""
        payload: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi there"}], **body}
        if stream:
            payload["stream"] = True
        if include_usage is not None:
            payload["stream_options"] = {"include_usage": include_usage}
        response = httpx.post(
            f"{self.url}/chat/completions",
            json=payload,
            headers={"Authorization": f"Bearer {secret}", "User-Agent": user_agent, **(headers or {})},
            timeout=30,
        )
        response.read()
        return response

    def insert_spend_rows(self, rows: list[dict]) -> int:
        self.require_sandbox("writes rows straight into the sandbox's database")
        from govsite.devtools.sandbox import insert_spend_rows

        return insert_spend_rows(self.db_path, rows)

    def cleanup(self) -> None:
        """Delete what a test created on a real proxy (the sandbox is thrown away with its file)."""
        if not self.created_keys and not self.created_teams and not self.created_users:
            return
        with self.client() as client:
            if self.created_keys:
                with contextlib.suppress(NotFound):
                    client.key_delete(keys=self.created_keys)
            headers = {"Authorization": f"Bearer {self.master_key}"}
            if not self.is_sandbox:
                # The client has no delete for teams and users (govsite never deletes them).
                if self.created_teams:
                    httpx.post(f"{self.url}/team/delete", json={"team_ids": self.created_teams}, headers=headers)
                if self.created_users:
                    httpx.post(f"{self.url}/user/delete", json={"user_ids": self.created_users}, headers=headers)
        self.created_keys.clear()
        self.created_teams.clear()
        self.created_users.clear()


def _wait_for_liveliness(target: GatewayTarget, log_path: Path) -> None:
    def answers() -> bool:
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{target.url}/health/liveliness", timeout=1).status_code == 200
        return False

    try:
        wait_until(answers, timeout=STARTUP_TIMEOUT, what="the sandbox gateway to answer", process=target.process)
    except AssertionError as exc:
        raise RuntimeError(f"{exc}:\n{log_path.read_text()}") from exc


def start_sandbox(workdir: Path, *, master_key: str = SANDBOX_MASTER_KEY) -> GatewayTarget:
    """Start the sandbox as a subprocess and wait until it answers; the caller stops `.process`."""
    port = free_port()
    db_path = workdir / "sandbox-gateway.sqlite3"
    log_path = workdir / "sandbox-gateway.log"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "govsite.devtools.sandbox",
                "--port",
                str(port),
                "--db",
                str(db_path),
                "--master-key",
                master_key,
                "--spend-log-batch-seconds",
                str(SPEND_LOG_BATCH_SECONDS),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    target = GatewayTarget("sandbox", f"http://127.0.0.1:{port}", master_key, db_path=db_path, process=process)
    try:
        _wait_for_liveliness(target, log_path)
    except RuntimeError:
        stop_sandbox(target)
        raise
    return target


def stop_sandbox(target: GatewayTarget) -> None:
    if target.process is not None and target.process.poll() is None:
        target.process.terminate()
        try:
            target.process.wait(10)
        except subprocess.TimeoutExpired:
            target.process.kill()
            target.process.wait(10)


@pytest.fixture(scope="session")
def sandbox_gateway(tmp_path_factory) -> GatewayTarget:
    """The sandbox gateway process, shared by the whole session."""
    target = start_sandbox(tmp_path_factory.mktemp("sandbox-gateway"))
    yield target
    stop_sandbox(target)


@pytest.fixture
def sandbox(sandbox_gateway) -> GatewayTarget:
    """The session's sandbox with no faults armed and LiteLLM's default settings, before and after the test."""
    sandbox_gateway.faults(clear=True)
    defaults = {"disable_custom_api_keys": False, "database": True, "spend_log_batch_seconds": SPEND_LOG_BATCH_SECONDS}
    sandbox_gateway.gateway_settings(**defaults)
    yield sandbox_gateway
    sandbox_gateway.faults(clear=True)
    sandbox_gateway.gateway_settings(**defaults)


@pytest.fixture(scope="session")
def live_litellm() -> GatewayTarget:
    """A real LiteLLM proxy, when LITELLM_URL and LITELLM_MASTER_KEY are set in the environment."""
    url = os.environ.get("LITELLM_URL", "").rstrip("/")
    master_key = os.environ.get("LITELLM_MASTER_KEY", "")
    if not url or not master_key:
        pytest.skip("set LITELLM_URL and LITELLM_MASTER_KEY to run the client tests against a real proxy")
    target = GatewayTarget("live", url, master_key)
    try:
        with target.client(timeout=5) as client:
            client.liveliness()
    except GatewayError as exc:
        pytest.skip(f"no LiteLLM proxy answers at {url}: {exc}")
    return target


@pytest.fixture
def gateway(request) -> GatewayTarget:
    """The gateway shared client tests run against: the sandbox, or a real proxy when parametrized "live"."""
    kind = getattr(request, "param", "sandbox")
    target = request.getfixturevalue("live_litellm" if kind == "live" else "sandbox")
    yield target
    target.cleanup()
