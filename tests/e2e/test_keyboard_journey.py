"""Journey by keyboard alone: an employee requests a key, an approver approves it, the employee reveals it
(through the in-page confirmation dialog) and copies it. No click, no mouse: Tab, Shift+Tab, Enter, Space,
Escape and typing, as someone who cannot use a pointer works; every step's page is also checked by axe-core
(the `shots` steps) and for CSP violations (the `people` fixture)."""

import re

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install the dev extra")

from playwright.sync_api import Page, expect  # noqa: E402

from govsite.devtools.management.commands.seed_demo import DEMO_PASSWORD  # noqa: E402
from tests.e2e import flows  # noqa: E402
from tests.e2e.conftest import demo_email  # noqa: E402

pytestmark = pytest.mark.slow  # a server, a worker, a gateway and a browser

FOCUSED = r"""() => {
  const e = document.activeElement;
  if (!e || e === document.body) return "";
  const label = e.labels && e.labels.length ? e.labels[0].innerText : "";
  // The name as read: a label's required-field star is aria-hidden, so it is left out here too.
  return (e.getAttribute("aria-label") || label || e.innerText || e.value || "").replace(/\s*\*\s*$/, "").trim();
}"""
TAB_LIMIT = 150


def focused(page: Page) -> str:
    return page.evaluate(FOCUSED)


def tab_to(page: Page, name: str | re.Pattern, *, backwards: bool = False) -> None:
    """Press Tab until the focused element's name is `name` (a string: exactly; a pattern: matching)."""
    seen = []
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        now = focused(page)
        if (now == name) if isinstance(name, str) else name.search(now):
            return
        seen.append(now)
    raise AssertionError(f"{name!r} is not reachable by Tab on {page.url}; focus went through {seen[:60]}")


def keyboard_login(people, who: str) -> Page:
    page = people.open(demo_email(who))
    page.goto("/accounts/login/")
    page.keyboard.press("Tab")
    assert focused(page) == "Skip to main content"  # the first tab stop of every page
    tab_to(page, "Email")
    page.keyboard.type(demo_email(who))
    tab_to(page, "Password")
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile(r"^Hello, "))).to_be_visible()
    return page


def test_request_approve_reveal_and_copy_a_key_with_the_keyboard_alone(people, shots):
    erin = keyboard_login(people, "erin")  # member of Platform
    erin.context.grant_permissions(["clipboard-read", "clipboard-write"])

    # The skip link leads past the navigation to the content.
    erin.keyboard.press("Tab")
    assert focused(erin) == "Skip to main content"
    erin.keyboard.press("Enter")
    assert erin.evaluate("document.activeElement.id") == "main"

    # Keys → Request a key.
    erin.keyboard.press("Shift+Tab")  # back into the header, from the content
    tab_to(erin, "Keys", backwards=True)
    erin.keyboard.press("Enter")
    expect(erin.get_by_role("heading", name="API keys")).to_be_visible()
    tab_to(erin, "Request a key")
    erin.keyboard.press("Enter")
    expect(erin.get_by_role("heading", name="Request an API key")).to_be_visible()

    # Sent without purpose or model: the error summary takes the focus and its links lead to the fields.
    tab_to(erin, "Send request")
    erin.keyboard.press("Enter")
    summary = erin.locator(".error-summary")
    expect(summary).to_be_focused()
    shots(erin, "error summary after a failed submit")
    tab_to(erin, re.compile(r"^Purpose and justification: "))
    erin.keyboard.press("Enter")
    expect(erin.get_by_label("Purpose and justification")).to_be_focused()
    erin.keyboard.type("Keyboard-only journey")

    # Team: a select, chosen by typing; the models: a group of checkboxes, ticked with Space.
    tab_to(erin, "Team", backwards=True)
    erin.keyboard.type("Platform")
    tab_to(erin, re.compile(r"^gpt-4o \("))
    erin.keyboard.press("Space")
    tab_to(erin, "Monthly budget (USD)")
    erin.keyboard.press("Control+A")
    erin.keyboard.type("20")
    shots(erin, "request form filled by keyboard")
    tab_to(erin, "Send request")
    erin.keyboard.press("Enter")
    heading = erin.get_by_role("heading", name=re.compile(r"^Key request #\d+$"))
    expect(heading).to_be_visible()
    request_id = int(heading.inner_text().split("#")[1])

    # The approver, in a browser of his own: Queues (a menu, opened with Enter) → Key requests → Approve.
    paul = keyboard_login(people, "paul")
    tab_to(paul, "Queues")
    paul.keyboard.press("Enter")
    tab_to(paul, "Key requests")
    paul.keyboard.press("Enter")
    expect(paul.get_by_role("heading", name="Key requests waiting for you")).to_be_visible()
    card = paul.locator(f"#request-{request_id}")
    for _ in range(TAB_LIMIT):  # the Approve button of this request's card, not another's
        tab_to(paul, "Approve")
        if paul.evaluate(f"document.activeElement.closest('#request-{request_id}') !== null"):
            break
    expect(card.get_by_role("button", name="Approve")).to_be_focused()
    paul.keyboard.press("Enter")
    expect(paul.get_by_text(f"Request #{request_id} approved; the key is being provisioned.")).to_be_visible()

    # Back to the employee: the request links to its key, revealable once it is provisioned.
    erin.reload()
    expect(erin.locator(".pagehead .status")).to_have_text("Approved")
    tab_to(erin, re.compile(rf"^govsite-r{request_id}-k\d+$"))
    erin.keyboard.press("Enter")
    flows.wait_until_revealable(erin)
    tab_to(erin, "Reveal key (once)")
    reveal_button = erin.get_by_role("button", name="Reveal key (once)")

    # The confirmation is a dialog in the page: focus moves in; Escape closes it and gives focus back.
    erin.keyboard.press("Enter")
    dialog = erin.get_by_role("dialog", name="Reveal the key now?")
    expect(dialog).to_be_visible()
    assert erin.evaluate("document.activeElement.closest('dialog') !== null"), focused(erin)
    shots(erin, "reveal confirmation dialog")
    erin.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(reveal_button).to_be_focused()
    # Still the key's page (titled with its human name; the gateway alias is in its facts).
    expect(erin.locator("dl.facts").get_by_text(re.compile(rf"govsite-r{request_id}-k\d+"))).to_be_visible()

    erin.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    tab_to(erin, "Reveal now")
    erin.keyboard.press("Enter")
    expect(erin.get_by_role("heading", name=re.compile(r"^Your key govsite-r"))).to_be_visible()

    # The key: a focusable field, selected when focused; the copy button says it copied.
    tab_to(erin, "Your key")
    field = erin.get_by_role("textbox", name="Your key")
    secret = field.input_value()
    assert flows.SECRET.match(secret)
    assert erin.evaluate("document.activeElement.selectionEnd - document.activeElement.selectionStart") == len(secret)
    erin.keyboard.press("Tab")
    assert focused(erin) == "Copy key"
    erin.keyboard.press("Enter")
    expect(erin.get_by_role("status").filter(has_text="Copied to the clipboard.")).to_be_visible()
    assert erin.evaluate("navigator.clipboard.readText()") == secret
    shots(erin, "key revealed and copied by keyboard")
    assert not people.person("erin").dialogs and not people.person("paul").dialogs  # no browser dialog
