"""Journeys with a second factor, against a second gunicorn on the e2e database with MFA_REQUIRED on:

- an approver is sent to enrol, sets up an authenticator app (TOTP), signs in with it, approves a key request
  while the second factor is fresh and, once the step-up window has passed, is asked for a code again before
  the next approval, which then goes through;
- another approver adds a security key with Chromium's virtual authenticator (WebAuthn over CDP) and signs in
  with it.

The people are made for these journeys (a team of their own, "MFA Lab"), so the other journeys' demo people
never meet a second factor. The site is reached as http://localhost:<port>: WebAuthn refuses an IP address as
the relying party's id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import subprocess
import sys
import time

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install the dev extra")

from playwright.sync_api import Page, expect  # noqa: E402

from govsite.devtools import processes  # noqa: E402
from govsite.devtools.management.commands.seed_demo import DEMO_PASSWORD  # noqa: E402
from tests.e2e import flows  # noqa: E402
from tests.e2e.conftest import ROOT, UI_TIMEOUT_MS  # noqa: E402

pytestmark = pytest.mark.slow  # a second server and a browser

# Short enough to pass within the journey, long enough for the fresh approval on a loaded machine.
STEP_UP_SECONDS = 45
PERIOD = 30  # allauth's TOTP period
DOMAIN = "mfa-lab.example"
PEOPLE = {  # email: (name, role in MFA Lab)
    f"approver@{DOMAIN}": ("Avery Approver", "approver"),
    f"keyholder@{DOMAIN}": ("Kai Keyholder", "approver"),
    f"member@{DOMAIN}": ("Mo Member", "member"),
}
SETUP = f"""
from govsite.accounts.models import Membership, Team, User
team, _ = Team.objects.get_or_create(slug="mfa-lab", defaults={{"name": "MFA Lab"}})
for email, (name, role) in {PEOPLE!r}.items():
    user = User.objects.create_user(email, {DEMO_PASSWORD!r}, full_name=name)
    Membership.objects.create(user=user, team=team, role=role)
"""


@pytest.fixture(scope="module")
def mfa_site(e2e_site):
    """gunicorn on the e2e database with MFA required and a short step-up window; its base URL."""
    e2e_site.manage("shell", "-c", SETUP)
    port = processes.free_port()
    env = {
        **e2e_site.env,
        "MFA_REQUIRED": "true",
        "MFA_STEP_UP_SECONDS": str(STEP_UP_SECONDS),
        "MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN": "true",  # plain http on loopback, as the rest of the e2e stack
    }
    log = e2e_site.log_dir / "gunicorn-mfa.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and gunicorn
            [sys.executable, "-m", "gunicorn", "govsite.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--threads", "4", "--graceful-timeout", "5", "--access-logfile", "-"],
            cwd=ROOT, env=env, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        processes.wait_for_http(f"http://127.0.0.1:{port}/healthz", server, what="gunicorn (MFA)", log=log)
        yield f"http://localhost:{port}"
    finally:
        processes.stop(server, timeout=10)


class Browsers:
    def __init__(self, browser, base_url: str):
        self.browser, self.base_url, self.pages, self.errors = browser, base_url, [], []

    def page(self) -> Page:
        context = self.browser.new_context(base_url=self.base_url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("dialog", lambda dialog: dialog.accept())
        self.pages.append(page)
        return page


@pytest.fixture
def browsers(browser, mfa_site, shots):
    expect.set_options(timeout=UI_TIMEOUT_MS)
    crowd = Browsers(browser, mfa_site)
    yield crowd
    for page in crowd.pages:
        page.context.close()
    assert not crowd.errors, f"JavaScript errors in the pages: {crowd.errors}"


# --- an authenticator app, as a phone computes it (RFC 6238) -------------------------------------------------


class AuthenticatorApp:
    def __init__(self, secret: str):
        self.secret = base64.b32decode(secret, casefold=True)
        self.last_step = -1

    def code(self) -> str:
        """The code of the next 30 s step not used yet (allauth refuses a code twice): waits for it if need be."""
        while int(time.time()) // PERIOD <= self.last_step:
            time.sleep(0.5)
        self.last_step = int(time.time()) // PERIOD
        digest = hmac.new(self.secret, struct.pack(">Q", self.last_step), hashlib.sha1).digest()
        offset = digest[-1] & 0x0F
        value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
        return f"{value % 1_000_000:06d}"


def sign_in_with_password(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def confirm_password(page: Page) -> None:
    """allauth asks for the password again before a factor is added."""
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Confirm").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to govsite")).to_be_visible()


def request_keys(page: Page, count: int) -> list[int]:
    sign_in_with_password(page, f"member@{DOMAIN}")  # a member: no second factor required
    expect(page.get_by_role("heading", name=re.compile(r"^Hello, "))).to_be_visible()
    return [flows.request_key(page, team="MFA Lab", purpose=f"MFA journey request {n}") for n in range(count)]


def decide(page: Page, request_id: int) -> None:
    flows.open_menu_link(page, "Queues", "Key requests")
    page.locator(f"#request-{request_id}").get_by_role("button", name="Approve").click()


def test_enrol_totp_sign_in_with_it_and_be_asked_again_after_the_step_up_window(browsers, shots):
    first, second = request_keys(browsers.page(), 2)

    page = browsers.page()
    sign_in_with_password(page, f"approver@{DOMAIN}")
    # An approver without a second factor is sent to enrol before anything else.
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.get_by_text("Your role requires a second factor")).to_be_visible()
    page.goto("/keys/")
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    shots(page, "sent to enrol")

    page.get_by_role("link", name="Set up an authenticator app").click()
    confirm_password(page)
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    app = AuthenticatorApp(page.locator("#authenticator_secret").inner_text())
    shots(page, "authenticator app QR code")
    page.get_by_label("Authenticator code").fill(app.code())
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_text("shown this once")).to_be_visible()
    expect(page.locator("#recovery_codes")).to_contain_text(re.compile(r"\w{8}"))
    shots(page, "recovery codes shown once")
    page.get_by_role("link", name="Done").click()
    expect(page.locator("#mfa-totp .status")).to_have_text("active")
    sign_out(page)

    # Signing in again: the password, then the app's code.
    sign_in_with_password(page, f"approver@{DOMAIN}")
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    page.get_by_label("Code").fill(app.code())
    page.get_by_role("button", name="Sign in").click()
    signed_in = time.monotonic()
    expect(page.get_by_role("heading", name=re.compile(r"^Hello, "))).to_be_visible()
    shots(page, "signed in with the code")

    # Fresh: the approval goes straight through.
    decide(page, first)
    expect(page.get_by_text(f"Request #{first} approved; the key is being provisioned.")).to_be_visible()
    assert time.monotonic() - signed_in < STEP_UP_SECONDS, "the fresh approval came after the window; raise it"

    # After the window: asked for a code again, then the approval is carried out.
    page.wait_for_timeout(max(0.0, STEP_UP_SECONDS + 1 - (time.monotonic() - signed_in)) * 1000)
    decide(page, second)
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    expect(page.get_by_text("Confirm it is you with your second factor to continue.")).to_be_visible()
    shots(page, "asked again before approving")
    page.get_by_label("Code").fill(app.code())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text(f"Request #{second} approved; the key is being provisioned.")).to_be_visible()
    expect(page.locator(f"#request-{second}")).to_have_count(0)
    shots(page, "approved after the second factor")


def test_a_security_key_is_enrolled_with_chromium_s_virtual_authenticator_and_signs_in(browsers, shots):
    page = browsers.page()
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )["authenticatorId"]

    sign_in_with_password(page, f"keyholder@{DOMAIN}")
    expect(page.get_by_text("Your role requires a second factor")).to_be_visible()
    page.get_by_role("link", name="Add a security key").click()
    confirm_password(page)
    expect(page.get_by_role("heading", name="Add a security key")).to_be_visible()
    page.get_by_label("Name").fill("Desk key")
    shots(page, "adding a security key")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("shown this once")).to_be_visible()  # the first factor comes with recovery codes
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1, "the virtual authenticator holds the new credential"
    page.get_by_role("link", name="Done").click()
    expect(page.locator("#mfa-webauthn")).to_contain_text("1 security key added")
    page.get_by_role("link", name="Manage security keys").click()
    expect(page.get_by_role("cell", name="Desk key")).to_be_visible()
    shots(page, "security key listed")
    sign_out(page)

    sign_in_with_password(page, f"keyholder@{DOMAIN}")
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    page.get_by_role("button", name="Use a security key").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Hello, "))).to_be_visible()
    shots(page, "signed in with the security key")
    assert cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"][0]["signCount"] >= 1
