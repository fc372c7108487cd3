"""Browser journeys against govsite as it runs in production, one stack for the whole tests/e2e package.

- `e2e_site` (package): a database of its own (on PostgreSQL: `test_<DATABASE_URL's name>_e2e`, dropped,
  created, migrated and filled by `seed_demo`), the sandbox gateway as its own process, gunicorn serving
  govsite with the production settings (DEBUG off; only the TLS redirect and secure cookies are off, for
  plain http on loopback), and a real `manage.py rqworker default` on REDIS_URL. Without PostgreSQL the
  database is an SQLite file; without Redis jobs run in the web process (the embedded defaults).
- `browser` (package): Debian's chromium (/usr/bin/chromium) driven by Playwright; every person gets a
  fresh browser context, so nothing is shared between the employee's and the approver's sessions.
- `people` (function): `people.login("erin")` signs a demo person in through the password form.
- `shots` (function): screenshots to test-artifacts/e2e/<test name>/NN-step.png, and of every open page
  when the test fails.

Playwright's sync API keeps an asyncio loop running in this thread while it is started, and Django then
refuses ORM calls (SynchronousOnlyOperation). So these tests never touch the ORM: they check what the
site shows and run jobs through the queue, and the browser stops with the package, before any other
test module runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from govsite.devtools import processes
from govsite.devtools.management.commands.seed_demo import DEMO_PASSWORD, DOMAIN
from govsite.devtools.processes import free_port
from tests.e2e import a11y
from tests.gateway_fixtures import GatewayTarget, start_sandbox, stop_sandbox, unavailable

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # the dev extra is not installed: every e2e test skips, saying so
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
# Playwright's own browser download does not work here; Debian's chromium does, with these flags.
# launch() gives every run a fresh temporary user-data dir of its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT = 60.0
# Generous for a loaded CI machine; every wait ends as soon as the page shows what it waits for.
UI_TIMEOUT_MS = 15_000


def demo_email(local: str) -> str:
    return local if "@" in local else f"{local}@{DOMAIN}"


@dataclass
class Site:
    """The running stack: where the site answers, the environment its processes share, the gateway."""

    base_url: str
    env: dict[str, str]
    gateway: GatewayTarget
    redis_url: str  # "" when jobs run in the web process
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`python manage.py ...` on the e2e database, as an operator would run it."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def run_job(self, dotted_path: str) -> None:
        """Run a job the way rqcron does: on the queue, for the worker. Without Redis, right here."""
        if self.redis_url:
            import redis
            from rq import Queue

            Queue("default", connection=redis.Redis.from_url(self.redis_url)).enqueue(dotted_path)
        else:
            module, name = dotted_path.rsplit(".", 1)
            self.manage("shell", "-c", f"from {module} import {name}; {name}()")

    def job_errors(self) -> list[str]:
        """What failed in the worker's jobs so far: the job, then the exception, for a failing test's report."""
        log = (self.log_dir / "rqworker.log").read_text(errors="replace") if self.redis_url else ""
        # The worker writes JSON lines (govsite.logs): a traceback is in a line's "exception", unfolded here.
        log = "\n".join(_unfold_json_line(line) for line in log.splitlines())
        pattern = re.compile(r"exception raised while executing \(([\w.]+)\)|^(\w[\w.]*(Error|Exception): .*)$", re.M)
        return [match.group(1) or match.group(2) for match in pattern.finditer(log)]

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = processes.tail(self.log_dir / f"{name}.log")
                raise AssertionError(f"{name} exited with {process.returncode}:\n{log}")


def _unfold_json_line(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    return "\n".join(filter(None, [str(record.get("event", "")), str(record.get("exception", ""))]))


def _postgres_database(url: str) -> tuple[str, dict] | None:
    """A database of the e2e suite's own next to DATABASE_URL's, when that is PostgreSQL."""
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import dj_database_url

    config = dj_database_url.parse(url)
    name = f"test_{config['NAME']}_e2e"
    # With two roles (DATABASE_OWNER_URL, as CI) the owner creates and drops it, and the site's `migrate` runs as
    # the owner too (it inherits the variable); gunicorn and the worker connect as the app role.
    owner_url = os.environ.get("DATABASE_OWNER_URL", "")
    if owner_url:
        owner = dj_database_url.parse(owner_url)
        config = {**config, **{key: owner[key] for key in ("USER", "PASSWORD", "HOST", "PORT")}}
    return urlsplit(url)._replace(path=f"/{name}").geturl(), {**config, "NAME": name}


def _reachable_redis(url: str) -> str:
    if not url:
        return ""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return ""
    return url


@pytest.fixture(scope="package", autouse=True)
def _requires_chromium():
    if sync_playwright is None:
        unavailable("Playwright is not installed: pip install the dev extra (playwright)")
    if not CHROMIUM.exists():
        unavailable(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="package")
def e2e_site(tmp_path_factory) -> Site:
    """Database, sandbox gateway, gunicorn and the RQ worker, started once for every journey."""
    workdir = tmp_path_factory.mktemp("e2e-site")
    log_dir = ARTIFACTS / "_stack"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)

    postgres = _postgres_database(os.environ.get("DATABASE_URL", ""))
    redis_url = _reachable_redis(os.environ.get("REDIS_URL", ""))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": base_url,
        "REDIS_URL": redis_url,
        # Signed audit checkpoints and their key in the run's own directory, never the checkout's var/.
        "AUDIT_CHECKPOINT_DIR": str(workdir / "audit-checkpoints"),
        "AUDIT_CHECKPOINT_KEY_FILE": str(workdir / "audit-key" / "checkpoint-ed25519.pem"),
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONUNBUFFERED": "1",
    }
    if postgres:
        env["DATABASE_URL"], db_config = postgres
        processes.recreate_database(db_config)
    else:
        env["DATABASE_URL"] = ""
        env["GOVSITE_VAR_DIR"] = str(workdir)  # an SQLite file of its own

    running: dict[str, subprocess.Popen] = {}
    gateway = None
    try:
        # The sandbox imports litellm (~3 s) while the database migrates.
        with (log_dir / "migrate.log").open("wb") as log:
            migrate = subprocess.Popen(  # noqa: S603
                [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
        gateway = start_sandbox(workdir)
        env["LITELLM_URL"] = gateway.url
        env["LITELLM_MASTER_KEY"] = gateway.master_key
        if migrate.wait(STARTUP_TIMEOUT) != 0:
            raise RuntimeError(f"migrate failed:\n{processes.tail(log_dir / 'migrate.log')}")
        site = Site(base_url=base_url, env=env, gateway=gateway, redis_url=redis_url, log_dir=log_dir)
        (log_dir / "seed_demo.log").write_text(site.manage("seed_demo").stdout)

        commands = {
            "gunicorn": [
                sys.executable, "-m", "gunicorn", "govsite.wsgi:application",
                "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                "--graceful-timeout", "5", "--access-logfile", "-",
            ],
        }  # fmt: skip
        if redis_url:
            import redis

            redis.Redis.from_url(redis_url).flushdb()  # this test Redis database: no jobs from an earlier run
            commands["rqworker"] = [sys.executable, "manage.py", "rqworker", "default"]
        for name, command in commands.items():
            with (log_dir / f"{name}.log").open("wb") as log:
                running[name] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
        processes.wait_for_http(
            f"{base_url}/healthz", running["gunicorn"], what="gunicorn", log=log_dir / "gunicorn.log"
        )
        site.processes = running
        yield site
    finally:
        for process in running.values():
            processes.stop(process, timeout=10)
        if gateway is not None:
            stop_sandbox(gateway)
            shutil.copy(gateway.db_path.parent / "sandbox-gateway.log", log_dir / "sandbox-gateway.log")
        if postgres:
            processes.recreate_database(postgres[1], drop_only=True)


# --- the browser --------------------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser(e2e_site) -> Browser:
    # Started after the stack (whose set-up may use Django) and stopped with the package: see the docstring.
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


class Shots:
    """Numbered screenshots of a journey, in the order it was walked; with `on_step` set (the `people`
    fixture sets it), each step's page is also checked by axe-core."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0
        self.on_step = None

    def __call__(self, page: Page, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{_slug(step)}.png"
        page.screenshot(path=path, full_page=True)
        if self.on_step is not None:
            self.on_step(page)
        return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def shots(request) -> Shots:
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Shots(folder)


@dataclass
class Person:
    email: str
    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)


class People:
    """Each person signs in through the password form in a browser context of their own."""

    def __init__(self, browser: Browser, site: Site):
        self.browser = browser
        self.site = site
        self.signed_in: dict[str, Person] = {}
        self.accessibility: list[a11y.Finding] = []  # axe-core's findings on govsite's own markup
        self.third_party: list[a11y.Finding] = []  # ... and inside a third party's widget (a11y.THIRD_PARTY)
        self._axe = a11y.axe_source()

    def open(self, email: str) -> Page:
        """A browser context of its own, with axe-core and the CSP listener in every document."""
        context = self.browser.new_context(base_url=self.site.base_url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        context.add_init_script(script=a11y.CSP_LISTENER)
        context.add_init_script(script=self._axe)
        page = context.new_page()
        person = Person(email, page)
        # A browser dialog (alert, confirm) is kept and answered; the site uses in-page dialogs instead.
        page.on("dialog", lambda dialog: (person.dialogs.append(dialog.message), dialog.accept()))
        page.on("pageerror", lambda error: person.errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                person.csp_violations.append(f"{page.url}: {message.text}")
                if a11y.is_csp_message(message.text)
                else None
            ),
        )
        self.signed_in[email] = person
        return page

    def audit(self, page: Page) -> list[a11y.Finding]:
        """axe-core on the page as it is now; what it finds fails the test at its end."""
        own, third = a11y.audit(page, urlsplit(page.url).path)
        self.accessibility.extend(own)
        self.third_party.extend(third)
        return own

    def login(self, who: str) -> Page:
        email = demo_email(who)
        page = self.open(email)
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("heading", name=re.compile(r"^Hello, "))).to_be_visible()
        return page

    def person(self, who: str) -> Person:
        return self.signed_in[demo_email(who)]

    def close(self) -> None:
        for person in self.signed_in.values():
            person.page.context.close()


@pytest.fixture
def people(request, browser, e2e_site, shots) -> People:
    expect.set_options(timeout=UI_TIMEOUT_MS)
    crowd = People(browser, e2e_site)
    shots.on_step = crowd.audit
    yield crowd
    shots.on_step = None
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        errors = e2e_site.job_errors()
        print("Failed jobs in the RQ worker:" if errors else "No job failed in the RQ worker.", *errors[-20:], sep="\n")
        print(f"Logs of the server, worker, sandbox: {e2e_site.log_dir}")
        for person in crowd.signed_in.values():
            with contextlib.suppress(Exception):  # the page may be gone with what failed
                shots(person.page, f"failure-{person.email.split('@')[0]}")
    crowd.close()
    e2e_site.check_alive()
    errors = {p.email: p.errors for p in crowd.signed_in.values() if p.errors}
    assert not errors, f"JavaScript errors in the pages: {errors}"
    violations = [v for p in crowd.signed_in.values() for v in p.csp_violations]
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)
    findings = "\n".join(str(finding) for finding in crowd.accessibility)
    assert not crowd.accessibility, f"axe-core (WCAG 2.1 A/AA) found, on govsite's own pages:\n{findings}"
