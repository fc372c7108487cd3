"""Every page of the navigation, as each role: axe-core (WCAG 2.1 A/AA) finds nothing on govsite's own
markup, the browser reports no Content-Security-Policy violation, every page reads at 390 px wide (a phone)
without scrolling sideways (a wide table scrolls in its own box), and each role's top bar fits one row at
1366 px.

The pages are found, not listed: from the home page every link of the header and of every `nav` (the
sub-navigations too), the action links (`a.button`) of the pages reached and, from each page of the
navigation, the first item of each of its tables and lists (a detail page of each kind), breadth first, one
browser session per role. A page added to the navigation later (MFA settings, an inbox) is checked without a change
here. The module runs after the journeys (file order), so the dashboards have the spend they booked and
show their charts.
"""

import json
import re
from urllib.parse import urljoin, urlsplit

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install the dev extra")

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from tests.e2e.conftest import ARTIFACTS  # noqa: E402

pytestmark = pytest.mark.slow  # a server, a worker, a gateway and a browser

ROLES = {"admin": "ada", "member": "erin", "approver": "paul", "finance": "fiona", "auditor": "aubrey"}
MAX_PAGES = 90  # per role; the crawl fails loudly rather than walking a generated page space
SKIP = re.compile(r"^/(static|media)/|^/api/schema|^/accounts/logout|[?&]format=csv|/download/?$")
LINKS = """(selector) => [...document.querySelectorAll(selector)].map((a) => a.getAttribute("href"))"""


# The first row's first link of every table or list in the content: one detail page of each kind.
FIRST_ITEMS = """() => [...document.querySelectorAll("main table tbody, main ul.plain, main .cards")]
  .map((list) => list.querySelector("a[href]:not([href^='?']):not([download])"))
  .filter(Boolean).map((a) => a.getAttribute("href"))"""
OUTSIDE = """() => [...document.querySelectorAll("[href], [src], [action], [formaction]")]
  .map((e) => e.href || e.src || e.action || e.formAction)
  .filter((url) => url && !url.startsWith(location.origin + "/") && !/^(data|blob|mailto):/.test(url))"""
CHARTS = """() => [...document.querySelectorAll(".plotly-chart")].map((div) => {
  const image = div.querySelector("svg[role=img]");
  const name = image && document.getElementById(image.getAttribute("aria-labelledby"));
  const description = image && document.getElementById(image.getAttribute("aria-describedby"));
  // the description is the chart's numbers: a table, or the section (open or folded) that holds it or says
  // that it has no rows
  const table = description && (description.matches("table") || description.querySelector("table, .empty") !== null);
  return {id: div.id, name: name && name.textContent.trim(),
          description: table ? "table" : description && description.tagName,
          buttons: [...div.querySelectorAll(".modebar-btn")].map((b) => b.getAttribute("data-title")),
          logo: div.querySelectorAll(".modebar-btn--logo, a[href*='plotly']").length};
})"""
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LAPTOP = {"width": 1366, "height": 768}
FITS = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
# What sticks out past the window's right edge (outside a box that scrolls on its own): the culprits of a page
# that scrolls sideways.
STICKING_OUT = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (e) => { for (let p = e.parentElement; p; p = p.parentElement) {
    if (["auto", "scroll"].includes(getComputedStyle(p).overflowX)) return true; } return false; };
  return {width: document.documentElement.scrollWidth, culprits: [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > width + 1 && !scrolls(e)
      && !e.parentElement.closest("details:not([open])"))
    .slice(0, 6).map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
      + (typeof e.className === "string" && e.className ? "." + e.className.trim().split(/\\s+/).join(".") : ""))};
}"""
# The top bar's pieces (the name, each entry of the navigation, who is signed in): [top, bottom] of each. On one
# row every piece overlaps every other vertically.
BAR_PIECES = """() => [...document.querySelectorAll(
  "header.topbar > .brand, header.topbar .mainnav > *, header.topbar .who > *")]
  .map((e) => { const b = e.getBoundingClientRect(); return [b.top, b.bottom]; })"""


def check_phone_width(page, path: str) -> str | None:
    """The page at 390 px wide: no sideways scrolling (charts redraw to the width first). Back at 1280 after."""
    page.set_viewport_size(PHONE)
    try:
        page.wait_for_function(FITS, timeout=3000)
        problem = None
    except PlaywrightTimeout:
        wide = page.evaluate(STICKING_OUT)
        problem = f"{path}: {wide['width']} px wide at {PHONE['width']} px, sticking out: {wide['culprits']}"
    page.set_viewport_size(DESKTOP)
    return problem


def check_bar_fits_one_row(page, role: str) -> str | None:
    page.set_viewport_size(LAPTOP)
    pieces = page.evaluate(BAR_PIECES)
    page.set_viewport_size(DESKTOP)
    assert pieces, f"{role}: no top bar found"
    if max(top for top, _ in pieces) >= min(bottom for _, bottom in pieces):
        rows = sorted({round(top) for top, _ in pieces})
        return f"{role}: the top bar wraps at {LAPTOP['width']} px (its pieces start at {rows} px)"
    return None


def _same_site(base: str, href: str | None) -> str | None:
    if not href or href.startswith(("#", "mailto:", "javascript:")):
        return None
    parts = urlsplit(urljoin(base, href))
    if parts.netloc != urlsplit(base).netloc:
        return None  # leaving the site: the OUTSIDE check fails the page for it
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return None if SKIP.search(path) else path


def check_charts(page, path: str) -> int:
    """Each chart is drawn, named by its caption, described by its table, with a two-button toolbar."""
    page.wait_for_function("() => [...document.querySelectorAll('.plotly-chart')].every((d) => d.matches('.drawn'))")
    charts = page.evaluate(CHARTS)
    for chart in charts:
        assert chart["name"], f"{path}: chart {chart['id']} has no name"
        assert chart["description"] == "table", f"{path}: chart {chart['id']} is not described by its table"
        assert set(chart["buttons"]) <= {"Download plot as a PNG", "Reset axes"}, f"{path}: {chart}"
        assert chart["logo"] == 0, f"{path}: plotly's logo in {chart['id']}"
    return len(charts)


def crawl(page, people, layout: dict[str, str | None]) -> dict[str, int]:
    """Visit the navigation breadth first; returns each page's number of axe findings. Each path not seen as an
    earlier role is also looked at 390 px wide (`layout`: path -> what is wrong, or None)."""
    page.goto("/")
    queue = [p for p in (_same_site(page.url, h) for h in page.evaluate(LINKS, "header a[href], nav a[href]")) if p]
    top = set(queue)
    seen: dict[str, int] = {}
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        assert len(seen) < MAX_PAGES, f"more than {MAX_PAGES} pages reached: {sorted(seen)}"
        response = page.goto(path)
        # A refusal (403) is a page too, and is checked; a server error is not expected anywhere.
        assert response is not None and response.status < 500, f"{path}: {response and response.status}"
        expect(page.locator("main").first).to_be_attached()
        if page.locator("#swagger-ui").count():
            expect(page.locator("#swagger-ui .info").first).to_be_visible()  # Swagger UI has drawn the schema
        people.charts += check_charts(page, path)
        outside = page.evaluate(OUTSIDE)
        assert not outside, f"{path} links to or loads from outside the site: {outside}"
        seen[path] = len(people.audit(page))
        if path not in layout:
            layout[path] = check_phone_width(page, path)
        links = page.evaluate(LINKS, "nav a[href], main a.button[href]")
        if path in top:  # from a page of the navigation, also the first item of each of its lists
            links += page.evaluate(FIRST_ITEMS)
        for href in links:
            found = _same_site(page.url, href)
            if found and found not in seen and found not in queue:
                queue.append(found)
    return seen


def test_every_page_of_the_navigation_as_each_role_passes_axe_with_no_csp_violation(people):
    summary = {}
    people.charts = 0
    anonymous = people.open("anonymous")
    anonymous.goto("/accounts/login/")
    summary["anonymous"] = {"/accounts/login/": len(people.audit(anonymous))}
    anonymous.goto("/no-such-page/")
    summary["anonymous"]["/no-such-page/ (404)"] = len(people.audit(anonymous))
    layout: dict[str, str | None] = {}
    bars = []
    for role, who in ROLES.items():
        page = people.login(who)
        bars.append(check_bar_fits_one_row(page, role))
        summary[role] = crawl(page, people, layout)
        if role == "finance":  # the toolbar's download works under the policy (no violation, a PNG)
            page.goto("/dashboards/")
            with page.expect_download() as download:
                page.locator(".modebar-btn[data-title='Download plot as a PNG']").first.click()
            assert download.value.suggested_filename.endswith(".png")
        page.context.close()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = {
        role: {"pages": len(pages), "axe_findings": sum(pages.values()), "per_page": pages}
        for role, pages in summary.items()
    }
    report["third_party"] = [str(finding) for finding in people.third_party]
    report["charts_checked"] = people.charts
    report["phone_width"] = {"pages": len(layout), "sideways": [p for p in layout.values() if p]}
    (ARTIFACTS / "accessibility-crawl.json").write_text(json.dumps(report, indent=2))
    print({role: (r["pages"], r["axe_findings"]) for role, r in summary_items(report)}, people.charts, "charts")

    # Every role reached its own part of the site, the API docs included.
    assert "/api/docs/" in summary["member"]
    assert any(path.startswith("/audit/") for path in summary["auditor"])
    assert any(path.startswith("/dashboards/") for path in summary["finance"])
    # Every page reads on a phone without sideways scrolling; every role's bar is one row on a laptop.
    assert not [p for p in layout.values() if p], "\n".join(p for p in layout.values() if p)
    assert not [b for b in bars if b], [b for b in bars if b]
    # The people fixture fails the test on any finding or CSP violation, with the list.


def summary_items(report):
    return [(role, r) for role, r in report.items() if isinstance(r, dict) and "axe_findings" in r]
