"""A real OpenID Connect provider and govsite as a real server, for the SSO end-to-end tests.

- `oidc_provider` (module): `node tests/sso/oidc/server.mjs` (panva's certified `oidc-provider`) on a
  free port, with the people in a JSON file the test rewrites between logins (`.set_users(...)`).
  Its node_modules are installed by `npm ci` from the committed lock file the first time; the tests
  skip, saying so, only when `node` is not installed.
- `govsite_site` / `sso_only_site` (module): gunicorn serving govsite with production settings (DEBUG off;
  only the TLS redirect and secure cookies are off, for plain http on loopback), OIDC_* pointing at the
  provider, on the pytest test database. settings.py builds SOCIALACCOUNT_PROVIDERS from OIDC_* at
  import, so the environment of a real process is what is under test, not an override.

The tests that use them are transactional (`transactional_db`): what a test writes is committed, so
the server sees it, and the database is emptied after each test.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from govsite.devtools import processes
from govsite.devtools.processes import free_port
from tests.gateway_fixtures import unavailable
from tests.keys.conftest import _database_url
from tests.sso.flows import CALLBACK_PATH

ROOT = Path(__file__).resolve().parents[2]
OIDC_DIR = Path(__file__).resolve().parent / "oidc"
STARTUP_TIMEOUT = 60.0
NPM_TIMEOUT = 300
CLIENT_ID = "govsite-tests"
CLIENT_SECRET = "govsite-tests-client-secret-" + "0123456789abcdef" * 2


def _npm_ci() -> None:
    """Install the provider's packages from the committed lock file, once (a lock keeps parallel
    pytest workers from installing over each other)."""
    marker = OIDC_DIR / "node_modules" / "oidc-provider" / "package.json"
    with (Path(tempfile.gettempdir()) / "govsite-tests-oidc-npm.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("node is installed but npm is not: cannot install tests/sso/oidc's packages")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=OIDC_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
        )
        if result.returncode != 0 or not marker.exists():
            pytest.fail(f"npm ci in {OIDC_DIR} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def oidc_node():
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed: the SSO end-to-end tests run a real OIDC provider (oidc-provider on Node)")
    _npm_ci()
    return node


@pytest.fixture(scope="module")
def site_ports() -> dict[str, int]:
    """Ports for the two govsite servers, chosen first: the provider must know their callback URLs."""
    return {"site": free_port(), "sso_only": free_port()}


@dataclass
class OidcProvider:
    url: str
    users_file: Path
    process: subprocess.Popen
    log: Path

    def set_users(self, *users: dict) -> None:
        """Replace the provider's people; it reads the file on every request, so the next login sees it."""
        tmp = self.users_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"users": list(users)}))
        tmp.replace(self.users_file)  # atomic: the provider never reads half a file


@pytest.fixture(scope="module")
def oidc_provider(oidc_node, site_ports, tmp_path_factory) -> OidcProvider:
    workdir = tmp_path_factory.mktemp("oidc-provider")
    users_file = workdir / "users.json"
    users_file.write_text(json.dumps({"users": []}))
    port = free_port()
    log = workdir / "oidc-provider.log"
    command = [oidc_node, str(OIDC_DIR / "server.mjs"), "--port", str(port), "--users", str(users_file)]
    command += ["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]
    for site_port in site_ports.values():
        command += ["--redirect-uri", f"http://127.0.0.1:{site_port}{CALLBACK_PATH}"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=OIDC_DIR, stdout=out, stderr=subprocess.STDOUT)
    provider = OidcProvider(f"http://127.0.0.1:{port}", users_file, process, log)
    try:
        processes.wait_for_http(
            f"{provider.url}/.well-known/openid-configuration", process, what="the OIDC provider", log=log
        )
        yield provider
    finally:
        processes.stop(process)


@dataclass
class Site:
    """govsite served by gunicorn."""

    url: str
    process: subprocess.Popen
    log: Path

    def tail(self) -> str:
        return processes.tail(self.log)


def _start_site(port: int, provider: OidcProvider, workdir: Path, **extra_env: str) -> Site:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        # No idle connections left open: the test database is emptied after each test and dropped at the end.
        "DB_CONN_MAX_AGE": "0",
        "REDIS_URL": "",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONUNBUFFERED": "1",
        "OIDC_SERVER_URL": provider.url,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_PROVIDER_NAME": "Test IdP",
        "OIDC_GROUPS_CLAIM": "groups",
        "SSO_ONLY": "false",
        **extra_env,
    }
    log = workdir / f"gunicorn-{port}.log"
    command = [
        sys.executable, "-m", "gunicorn", "govsite.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
        "--graceful-timeout", "5", "--access-logfile", "-",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    site = Site(f"http://127.0.0.1:{port}", process, log)
    try:
        processes.wait_for_http(f"{site.url}/healthz", process, what="gunicorn", log=log)
    except RuntimeError:
        processes.stop(process)
        raise
    return site


def _requires_postgres():
    if connection.vendor != "postgresql":
        unavailable("govsite runs as its own process on the test database, which needs PostgreSQL")


@pytest.fixture(scope="module")
def govsite_site(django_db_setup, oidc_provider, site_ports, tmp_path_factory) -> Site:
    _requires_postgres()
    site = _start_site(site_ports["site"], oidc_provider, tmp_path_factory.mktemp("govsite"))
    yield site
    processes.stop(site.process)


@pytest.fixture(scope="module")
def sso_only_site(django_db_setup, oidc_provider, site_ports, tmp_path_factory) -> Site:
    _requires_postgres()
    site = _start_site(site_ports["sso_only"], oidc_provider, tmp_path_factory.mktemp("govsite"), SSO_ONLY="true")
    yield site
    processes.stop(site.process)


# --- on failure: what the servers said ----------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _server_logs_on_failure(request):
    yield
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    for name in ("oidc_provider", "govsite_site", "sso_only_site"):
        if name in request.fixturenames:
            server = request.getfixturevalue(name)
            print(f"--- {name} log ({server.log}) ---\n{processes.tail(server.log)}")
