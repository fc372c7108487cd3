"""Journey: the console people use every day.

- a member sees spend on their key list and asks for a higher cap on one key;
- finance sees an increase waiting on the home page and decides it;
- an approver clears their inbox: a key request, an increase and the keys of an access review (five or more
  items) in one bulk decision, with the revocation confirmed first.
"""

import re

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install the dev extra")

from playwright.sync_api import expect  # noqa: E402

from tests.e2e import flows  # noqa: E402

pytestmark = pytest.mark.slow  # a server, a worker, a gateway and a browser


CHLOE_KEY = "Console journey chloe · Chloe Chen"
DIEGO_KEY = "Console journey diego · Diego Diaz"


def _make_team_keys(site) -> None:
    """Five Data Science keys made the way an approver's decisions make them (the services, as a script would), so
    the access review has at least five items; Chloe's and Diego's are also the ones whose caps are raised."""
    code = (
        "from govsite.accounts.models import Team, User\n"
        "from keys import services\n"
        "from keys.models import DataClassification, KeyKind, ModelPolicy\n"
        "from decimal import Decimal\n"
        "team = Team.objects.get(slug='data-science')\n"
        "dev = User.objects.get(email='dev@demo.govsite.local')\n"
        "model = ModelPolicy.objects.get(name='gpt-4o')\n"
        "public = DataClassification.objects.get(key='public')\n"
        "pairs = (('chloe', 'chloe'), ('diego', 'diego'), ('hana', 'hana'), ('hana', 'notebooks'), ('chloe', 'docs'))\n"
        "for local, label in pairs:\n"
        "    who = User.objects.get(email=f'{local}@demo.govsite.local')\n"
        "    data = services.KeyRequestInput(team=team, kind=KeyKind.PERSONAL, purpose=f'Console journey {label}',\n"
        "        data_classification=public, models=[model], monthly_budget=Decimal('20'), expiry_days=30)\n"
        "    request = services.key_request_create(requester=who, data=data)\n"
        "    services.key_request_approve(request=request, approver=dev, note='console journey')\n"
    )
    site.manage("shell", "-c", code)


def _pulling(site, locator):
    """The spend pull run now, in a process of its own (not behind the gateway commands the worker is still
    carrying out), each time the page does not show `locator` yet."""

    def visible():
        site.manage("shell", "-c", "from budgets.jobs import pull_spend_logs; pull_spend_logs()")
        return locator

    return visible


PAGE_WEIGHT_LIMIT = 1_500_000  # bytes: the first dashboard page on a cold cache


def transferred(page, path: str, artifacts) -> int:
    """Bytes on the wire (headers and encoded bodies) for `path` in a fresh browser context that holds only the
    session cookie: a cold cache. Written to page-weight.txt beside the journey's screenshots."""
    cold = page.context.browser.new_context()
    cold.add_cookies(page.context.cookies())
    total, lines = 0, []
    cold_page = cold.new_page()

    def count(response):
        nonlocal total
        sizes = response.request.sizes()
        size = sizes["responseBodySize"] + sizes["responseHeadersSize"]
        total += size
        lines.append(f"{size:>10,}  {response.status}  {response.url}")

    cold_page.on("requestfinished", lambda request: count(request.response()))
    origin = "/".join(page.url.split("/", 3)[:3])
    cold_page.goto(origin + path, wait_until="networkidle")
    cold.close()
    (artifacts.folder / "page-weight.txt").write_text(f"{path}: {total:,} bytes\n" + "\n".join(lines) + "\n")
    return total


def test_the_console_a_member_finance_and_an_approver_use_every_day(people, shots, e2e_site):
    _make_team_keys(e2e_site)

    # An admin opens an access review of Data Science's keys.
    ada = people.login("ada")
    ada.goto("/audit/reviews/new/")
    ada.get_by_label("Name").fill("Console journey review")
    ada.get_by_label("Data Science", exact=True).check()
    ada.get_by_role("button", name="Open the campaign").click()
    expect(ada.get_by_text(re.compile(r"Console journey review is open: \d+ keys snapshotted"))).to_be_visible()
    shots(ada, "admin opened an access review")
    weight = transferred(ada, "/dashboards/", shots)
    print(f"org dashboard on a cold cache: {weight:,} bytes")
    assert weight <= PAGE_WEIGHT_LIMIT, f"the org dashboard transfers {weight:,} bytes on a cold cache"

    # A member: their key list shows spend; they use a key and see it there; they ask for a higher cap.
    chloe = people.login("chloe")
    chloe.goto("/keys/")
    chloe.get_by_role("link", name=CHLOE_KEY, exact=True).click()
    flows.wait_until_revealable(chloe)
    secret = flows.reveal(chloe)
    for _ in range(3):
        assert e2e_site.gateway.chat(secret, "gpt-4o").status_code == 200
    chloe.goto("/keys/?sort=-spend")
    row = chloe.get_by_role("row").filter(has=chloe.get_by_role("link", name=CHLOE_KEY, exact=True))
    used = row.get_by_role("cell").nth(4)  # key, team, spend, cap used, requests in 7 days
    flows.reload_until(
        chloe, _pulling(e2e_site, used.filter(has_text=re.compile(r"^3$"))), timeout=240, what="3 requests"
    )
    expect(row.get_by_role("cell").nth(2)).to_contain_text(re.compile(r"\$\d+\.\d\d"))
    shots(chloe, "member sees spend on the key list")
    row.get_by_role("link", name=CHLOE_KEY, exact=True).click()
    expect(chloe.get_by_role("heading", name="Usage, last 30 days")).to_be_visible()
    chloe.get_by_role("link", name="Ask for a higher cap").click()
    chloe.get_by_label("Increase by (USD)").fill("30")
    chloe.get_by_label("Permanently").check()
    chloe.get_by_label("Justification").fill("The forecasting notebooks call the model on every run.")
    shots(chloe, "member asks for a higher cap on one key")
    chloe.get_by_role("button", name="Send request").click()
    expect(chloe.locator(".pagehead .status")).to_have_text("Pending")
    expect(chloe.get_by_text("this raises it, not the team's budget")).to_be_visible()
    shots(chloe, "cap increase pending with the approver")

    # Another member asks for more than the approvers' limit on one key: finance decides it.
    diego = people.login("diego")
    diego.goto("/keys/")
    diego.get_by_role("link", name=DIEGO_KEY, exact=True).click()
    diego.get_by_role("link", name="Ask for a higher cap").click()
    diego.get_by_label("Increase by (USD)").fill("150")
    diego.get_by_label("Permanently").check()
    diego.get_by_label("Justification").fill("Backtests of the demand model over five years.")
    diego.get_by_role("button", name="Send request").click()
    expect(diego.get_by_text(re.compile(r"finance \(above the team's \$100(\.00)? limit\)"))).to_be_visible()

    fiona = people.login("fiona")
    waiting = fiona.locator(".needs-me [data-kind=budget_increases]")
    expect(waiting).to_contain_text("$150.00 more on key Console journey diego")
    expect(fiona.get_by_text("Nothing is waiting for you.")).to_have_count(0)
    shots(fiona, "finance sees the increase on the home page")
    waiting.get_by_role("link", name=re.compile(r"^\$150\.00 more")).click()
    fiona.get_by_label("Approve").check()
    fiona.get_by_role("button", name="Send decision").click()
    expect(fiona.get_by_text(re.compile(r"Approved: the key's cap is now \$170\.00 a month\."))).to_be_visible()
    shots(fiona, "finance approved the cap")

    # A member asks for a key: it waits in the approver's queue with the rest.
    flows.request_key(chloe, team="Data Science", purpose="Console journey: a key for the experiment tracker")

    # The approver clears the inbox.
    dev = people.login("dev")
    expect(dev.get_by_role("link", name=re.compile(r"^Needs me\s+\d+"))).to_be_visible()
    dev.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Needs me")).click()
    for kind in ("key_requests", "budget_increases", "access_reviews"):
        expect(dev.locator(f"#inbox-{kind} .count")).not_to_have_text("0")
    shots(dev, "approver's inbox")

    dev.locator("#inbox-key_requests").get_by_role("link", name="Open the queue").click()
    for box in dev.locator("input[name=ids]").all():
        box.check()
    dev.get_by_label("Note for the ticked requests").fill("fine for the experiment tracker")
    shots(dev, "approver ticks the key requests")
    dev.get_by_role("button", name="Approve ticked").click()
    expect(dev.get_by_text(re.compile(r"request(s)? approved"))).to_be_visible()
    expect(dev.get_by_text("Nothing is waiting for your decision.")).to_be_visible()

    dev.goto("/inbox/")
    dev.locator("#inbox-budget_increases").get_by_role("link", name=re.compile(r"^\$30\.00 more")).click()
    dev.get_by_label("Approve").check()
    dev.get_by_role("button", name="Send decision").click()
    expect(dev.get_by_text(re.compile(r"Approved: the key's cap is now \$50\.00 a month\."))).to_be_visible()

    dev.goto("/inbox/")
    dev.locator("#inbox-access_reviews").get_by_role("link", name="Open the queue").click()
    rows = dev.locator("tbody tr")
    count = rows.count()
    assert count >= 5, f"{count} review items"
    for index in range(count):
        decision = "revoke" if index == 0 else "keep"
        rows.nth(index).locator(f"input[type=radio][value={decision}]").check()
    dev.get_by_label(re.compile(r"^Rationale")).fill("Quarterly review: all in use by the data science team.")
    shots(dev, "approver decides every key of the review in one table")
    dev.get_by_role("button", name="Record decisions").click()
    expect(dev.get_by_role("heading", name="Revoke 1 key?")).to_be_visible()
    shots(dev, "approver confirms the revocation")
    dev.get_by_role("button", name=re.compile(r"^Yes, record these decisions")).click()
    expect(dev.get_by_text(re.compile(rf"{count} decisions recorded"))).to_be_visible()
    expect(dev.get_by_text("No key waits for your review.")).to_be_visible()

    dev.goto("/inbox/")
    for kind in ("key_requests", "budget_increases", "access_reviews"):
        expect(dev.locator(f"#inbox-{kind} .count")).to_have_text("0")
    shots(dev, "approver's inbox is clear")
