"""Steps more than one journey walks: ask for a key, decide it, reveal it. Each is what a person clicks."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

SECRET = re.compile(r"^sk-[A-Za-z0-9_\-]{20,}$")


def reload_until(page: Page, visible: Callable[[], Locator], *, timeout: float = 30.0, what: str = "it") -> None:
    """Reload until the locator `visible()` gives is shown: for what a background job changes.

    Each round waits briefly on the freshly loaded page, so the wait ends as soon as the job is done.
    """
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(AssertionError):
            expect(visible().first).to_be_visible(timeout=500)
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} on {page.url}")
        page.reload()


def request_key(page: Page, *, team: str, model: str = "gpt-4o", purpose: str, budget: str = "50") -> int:
    """Fill the key request form from the key list; returns the request's number."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    page.get_by_role("link", name="Request a key").first.click()
    expect(page.get_by_role("heading", name="Request an API key")).to_be_visible()
    page.get_by_label("Team").select_option(label=team)
    expect(page.get_by_label("Personal")).to_be_checked()
    page.get_by_label("Purpose and justification").fill(purpose)
    page.get_by_label(f"{model} (", exact=False).check()
    page.get_by_label("Monthly budget (USD)").fill(budget)
    page.get_by_role("button", name="Send request").click()
    heading = page.get_by_role("heading", name=re.compile(r"^Key request #\d+$"))
    expect(heading).to_be_visible()
    return int(heading.inner_text().split("#")[1])


def open_queue(page: Page, kind: str) -> None:
    """From the navigation's "Needs me" to one queue of the inbox (key_requests, budget_increases, ...)."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Needs me")).click()
    expect(page.get_by_role("heading", name="Needs me", exact=True)).to_be_visible()
    page.locator(f"#inbox-{kind}").get_by_role("link", name="Open the queue").click()


def open_menu_link(page: Page, menu: str, link: str) -> None:
    """A link of one of the navigation's menus (Dashboards, Queues, Audit, Settings or More)."""
    nav = page.get_by_role("navigation", name="Main")
    nav.locator("summary", has_text=menu).click()
    nav.get_by_role("link", name=link, exact=True).click()


def approve_key_request(page: Page, request_id: int, *, requester: str) -> None:
    """From the approval queue, as the team's approver."""
    open_queue(page, "key_requests")
    expect(page.get_by_role("heading", name="Key requests waiting for you")).to_be_visible()
    card = page.locator(f"#request-{request_id}")
    expect(card).to_contain_text(requester)
    card.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(f"Request #{request_id} approved; the key is being provisioned.")).to_be_visible()
    expect(page.locator(f"#request-{request_id}")).to_have_count(0)


def open_key_of_request(page: Page, request_id: int) -> None:
    page.goto(f"/keys/requests/{request_id}/")
    page.get_by_role("link", name=re.compile(rf"^govsite-r{request_id}-k\d+$")).click()
    # A key's page is titled with its human name; the gateway alias is in its facts.
    expect(page.locator("dl.facts").get_by_text(re.compile(rf"govsite-r{request_id}-k\d+"))).to_be_visible()


def wait_until_revealable(page: Page) -> None:
    """The worker provisions the key at the gateway; the page offers the reveal once it is active."""
    reload_until(
        page,
        lambda: page.get_by_role("button", name="Reveal key (once)"),
        timeout=45,
        what="the key to be provisioned",
    )


def reveal(page: Page) -> str:
    """Reveal the key (confirmed in the page's own dialog) and return the secret shown once."""
    page.get_by_role("button", name="Reveal key (once)").click()
    dialog = page.get_by_role("dialog", name="Reveal the key now?")
    expect(dialog).to_contain_text("The key is shown once.")
    dialog.get_by_role("button", name="Reveal now").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Your key govsite-r"))).to_be_visible()
    secret = page.get_by_role("textbox", name="Your key").input_value().strip()
    assert SECRET.match(secret), f"not a LiteLLM-style key: {secret[:6]}..."
    return secret
