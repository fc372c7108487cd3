"""Journey b: a team's gateway traffic crosses 80% of its budget; the approver is told in the site, a
member asks for more, finance (the amount is above the approvers' limit) approves it."""

import re
import time
from decimal import Decimal

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install the dev extra")

from playwright.sync_api import expect  # noqa: E402

from tests.e2e import flows  # noqa: E402

pytestmark = pytest.mark.slow  # a server, a worker, a gateway and a browser

BUDGET = Decimal("0.10")
# The sandbox's mock answers count 10 prompt tokens; it bills a prompt-cache read of as many tokens as
# this header says (gpt-4o: $1.25 per million), so each call costs about $0.006 and fifteen or so take
# the team from 0 to 85-95% of $0.10.
CACHED_TOKENS = {"x-sandbox-cached-tokens": "5000"}
PULL_JOB = "budgets.jobs.pull_spend_logs"


def pulling(site, locator):
    """Run the spend pull now and every few seconds while the page does not show `locator` yet.

    A pull reads up to the second it starts; calls made within that second are read by the next
    pull (each pull reads again from two minutes before its watermark, and books a request once)."""
    last_run = None

    def visible():
        nonlocal last_run
        if last_run is None or time.monotonic() - last_run > 5:
            site.run_job(PULL_JOB)
            last_run = time.monotonic()
        return locator

    return visible


def spend_until(gateway, secret: str, *, at_least: Decimal, below: Decimal) -> Decimal:
    """Chat through the gateway with the member's key until the gateway's cost reaches `at_least`."""
    spent = Decimal(0)
    while spent < at_least:
        response = gateway.chat(secret, "gpt-4o", headers=CACHED_TOKENS)
        assert response.status_code == 200, response.text
        spent += Decimal(response.headers["x-litellm-response-cost"])
    assert spent < below, f"one call cost too much to stop between the thresholds: ${spent}"
    return spent


def test_budget_alert_at_80_percent_then_finance_approves_an_increase(people, shots, e2e_site):
    # An admin cuts Payments' monthly budget (seeded by seed_demo) to a small one; increases above $0
    # go to finance.
    ada = people.login("ada")
    ada.goto("/budgets/")
    ada.get_by_role("row").filter(has=ada.get_by_role("link", name="Payments", exact=True)).get_by_role(
        "link", name="Edit"
    ).click()
    ada.get_by_label("Amount (USD)").fill(str(BUDGET))
    ada.get_by_label("Alert at (% of the budget)").fill("50, 80, 100")
    ada.get_by_label("Approvers may grant increases up to (USD)").fill("0")
    shots(ada, "admin sets a small budget for payments")
    ada.get_by_role("button", name="Save").click()
    expect(ada.get_by_role("heading", name=re.compile(r"^Budget · Payments"))).to_be_visible()
    budget_url = ada.url
    expect(ada.get_by_text("No threshold crossed yet.")).to_be_visible()

    # A member of Payments gets a key the usual way, and uses it.
    nia = people.login("nia")
    request_id = flows.request_key(nia, team="Payments", purpose="Cursor for the payouts service", budget="20")
    priya = people.login("priya")  # Payments' approver
    flows.approve_key_request(priya, request_id, requester="Nia Nwosu")
    flows.open_key_of_request(nia, request_id)
    flows.wait_until_revealable(nia)
    secret = flows.reveal(nia)
    shots(nia, "member has a key")
    spent = spend_until(e2e_site.gateway, secret, at_least=BUDGET * Decimal("0.85"), below=BUDGET)

    # The spend pull (rqcron runs it every minute) books the traffic into the ledger, which alerts.
    priya.goto("/notices/")
    notice = priya.get_by_role("listitem").filter(has_text=re.compile(r"Payments: team budget at 80%"))
    flows.reload_until(priya, pulling(e2e_site, notice), timeout=45, what="the 80% budget notice")
    expect(notice).to_contain_text("new")
    expect(priya.get_by_role("listitem").filter(has_text="Payments: team budget at 50%")).to_be_visible()
    shots(priya, "approver sees the 80 percent notice")
    notice.get_by_role("link", name="Open").click()
    expect(priya.get_by_role("heading", name=re.compile(r"^Budget · Payments"))).to_be_visible()
    expect(priya.get_by_text(re.compile(r"reached 80% \(\$0\.\d\d of \$0\.10\)"))).to_be_visible()
    expect(priya.get_by_role("row").filter(has_text="Nia Nwosu")).to_be_visible()  # cost per person
    shots(priya, "approver sees the alert on the budget")

    # The member sees the budget nearly spent and asks for more.
    nia.goto("/budgets/")
    row = nia.get_by_role("row").filter(has=nia.get_by_role("link", name="Payments", exact=True))
    # The ledger's cost, not the gateway's, is what the budget counts; both are above 80% here.
    expect(row).to_contain_text(re.compile(r"\b(8\d|9\d)(\.\d)?%"))
    row.get_by_role("link", name="Payments", exact=True).click()
    nia.get_by_role("link", name="Request an increase").click()
    nia.get_by_label("Increase by (USD)").fill("5")
    nia.get_by_label("Permanently").check()
    nia.get_by_label("Justification").fill("Payouts launch week: the agent reviews every migration.")
    shots(nia, "member asks for an increase")
    nia.get_by_role("button", name="Send request").click()
    expect(nia.get_by_role("heading", name=re.compile(r"^Budget increase #\d+$"))).to_be_visible()
    expect(nia.locator(".pagehead .status")).to_have_text("Pending")
    expect(nia.get_by_text(re.compile(r"finance \(above the team's \$0(\.00)? limit\)"))).to_be_visible()
    increase_id = int(nia.get_by_role("heading", name=re.compile(r"^Budget increase #")).inner_text().split("#")[1])
    shots(nia, "increase pending with finance")

    # Above the approvers' limit: not in the approver's queue, in finance's.
    priya.goto("/budgets/increases/")
    expect(priya.locator(f"#increase-{increase_id}")).to_have_count(0)
    fiona = people.login("fiona")
    fiona.goto("/budgets/increases/")
    card = fiona.locator(f"#increase-{increase_id}")
    expect(card).to_contain_text("Nia Nwosu")
    expect(card).to_contain_text("above the team limit")
    shots(fiona, "finance sees the increase")
    card.get_by_role("button", name="Approve").click()
    expect(fiona.get_by_text("Approved: the budget is now $5.10.")).to_be_visible()
    shots(fiona, "finance approved")

    nia.reload()
    expect(nia.locator(".pagehead .status")).to_have_text("Approved")
    expect(nia.get_by_text(re.compile(r"\$0\.10 → \$5\.10"))).to_be_visible()
    shots(nia, "member sees the increase approved")
    ada.goto(budget_url)
    expect(ada.get_by_text(re.compile(r"^\$5\.10 per calendar month"))).to_be_visible()
    shots(ada, "budget raised")
    ada.goto("/budgets/reconciliation/?by=key")
    row = ada.get_by_role("row").filter(has_text=f"govsite-r{request_id}-k1")
    # Every call is booked once, at the gateway's cost.
    booked = row.filter(has_text=f"${spent:.6f}")
    flows.reload_until(ada, pulling(e2e_site, booked), timeout=30, what=f"the ledger to hold ${spent:.6f}")
    expect(row.get_by_role("cell").nth(6)).to_have_text("0.000000")  # after day, key, team, requests, gateway, ledger
    shots(ada, "reconciliation of gateway spend and the ledger")
