"""govsite as a real server for API tests: gunicorn on the pytest test database, production settings.

The tests that call it are transactional (`transaction=True`): what they write is committed, so the
server sees it, and the database is emptied after each test. Jobs run in the web process (no Redis),
against the sandbox gateway process, so an approval provisions a real key that can then be revealed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings as django_settings

from govsite.devtools import processes
from govsite.devtools.processes import free_port
from tests.gateway_fixtures import GatewayTarget
from tests.keys.conftest import _database_url

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0


@dataclass
class ApiServer:
    url: str
    process: subprocess.Popen
    log: Path
    export_dir: Path

    def tail(self) -> str:
        return processes.tail(self.log, 80)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.tail()}")

    def stop(self) -> None:
        processes.stop(self.process, timeout=10)


def start_api_server(
    workdir: Path,
    gateway: GatewayTarget | None,
    *,
    server: str = "gunicorn",
    workers: int = 2,
    env: dict[str, str] | None = None,
) -> ApiServer:
    """gunicorn (`workers` x 4 threads) on a free port, or (`server="runserver"`) Django's development
    server, which keeps connections alive; returns once /healthz answers. Without a gateway the server has
    none to call (tests of what needs none: signing in); `env` adds to or overrides its environment.
    gunicorn's access log names the worker (pid) that answered each request."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    export_dir = workdir / "exports"
    export_dir.mkdir(parents=True, exist_ok=True)
    extra = env or {}
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        # No idle connections left open: the test database is emptied after each test and dropped at the end.
        "DB_CONN_MAX_AGE": "0",
        "REDIS_URL": "",
        "LITELLM_URL": gateway.url if gateway else "",
        "LITELLM_MASTER_KEY": gateway.master_key if gateway else "",
        # The test process's key material: secrets the tests encrypt for a reveal decrypt in the server.
        "SECRET_KEY": django_settings.SECRET_KEY,
        "KEY_ENCRYPTION_SECRET": django_settings.KEY_ENCRYPTION_SECRET or "",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": url,
        "EVIDENCE_EXPORT_DIR": str(export_dir),
        # Signed audit checkpoints and their key beside the exports, never the checkout's var/.
        "AUDIT_CHECKPOINT_DIR": str(workdir / "audit-checkpoints"),
        "AUDIT_CHECKPOINT_KEY_FILE": str(workdir / "audit-key" / "checkpoint-ed25519.pem"),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    log = workdir / f"{server}.log"
    command = {
        "gunicorn": [
            sys.executable, "-m", "gunicorn", "govsite.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", "4",
            "--graceful-timeout", "5", "--timeout", "60", "--access-logfile", "-",
            "--access-logformat", '%(h)s pid=%(p)s "%(r)s" %(s)s',
        ],
        "runserver": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
    }[server]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    server = ApiServer(url, process, log, export_dir)
    try:
        processes.wait_for_http(f"{url}/healthz", process, what=server, log=log, timeout=STARTUP_TIMEOUT)
    except RuntimeError:
        server.stop()
        raise
    return server
