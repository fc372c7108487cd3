"""The real LiteLLM proxy (litellm[proxy], the dev extra) as a process for the tests that run LiteLLM's own
code: mock_response deployments, no database, and optionally govsite's callback pushing to a live server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.gateway_fixtures import free_port
from tests.waiting import wait_until

CALLBACK = Path(__file__).resolve().parents[1] / "govsite" / "gateway" / "callback.py"


def callback_env(directory: Path, *, ingest_url: str, ingest_token: str, **extra: str) -> dict[str, str]:
    """Put govsite's callback where the proxy imports it (`govsite_callback`, as docker-compose mounts it)
    and return the environment that points it at govsite."""
    (directory / "govsite_callback.py").write_text(CALLBACK.read_text())
    return {
        "PYTHONPATH": str(directory),
        "GOVSITE_INGEST_URL": ingest_url,
        "GOVSITE_INGEST_TOKEN": ingest_token,
        **extra,
    }


@dataclass
class RealProxy:
    url: str
    process: subprocess.Popen
    log_path: Path
    _log: IO = field(repr=False)

    def log_tail(self, size: int = 3000) -> str:
        return self.log_path.read_text()[-size:]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)
        self._log.close()


def start_real_proxy(directory: Path, config: str, *, env: dict[str, str] | None = None, name: str = "proxy"):
    """Start `litellm --config` in `directory` with no database and wait until it is live (skips where
    litellm[proxy] is not installed; CI installs the dev extra, so it never skips there)."""
    executable = shutil.which("litellm", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("litellm[proxy] is not installed (the dev extra)")
    config_path = directory / f"{name}.yaml"
    config_path.write_text(config)
    environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}
    environment.pop("DATABASE_URL", None)  # the proxy runs without a database
    port = free_port()
    log_path = directory / f"{name}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [executable, "--config", str(config_path), "--port", str(port), "--host", "127.0.0.1"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=directory,
    )
    proxy = RealProxy(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path, _log=log)

    def alive() -> bool:
        try:
            return httpx.get(f"{proxy.url}/health/liveliness", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(alive, timeout=120, what=f"the LiteLLM proxy to start ({log_path})", process=process)
    except BaseException:
        proxy.stop()
        raise
    return proxy
