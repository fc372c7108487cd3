"""The API from a person's side: from the header's "API tokens", make a token (shown once), use it from a
script, see what the script did in the site, read the API docs (Swagger UI from the site's own static files,
nothing fetched from anywhere else), and revoke the token."""

import re

import httpx
import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install the dev extra")

from playwright.sync_api import expect  # noqa: E402

from tests.e2e import flows  # noqa: E402

pytestmark = pytest.mark.slow  # a server, a worker, a gateway and a browser

TOKEN = re.compile(r"^gst_[A-Za-z0-9_\-]{40,}$")


def test_a_person_makes_a_token_uses_it_from_a_script_reads_the_docs_and_revokes_it(people, shots, e2e_site):
    lena = people.login("lena")  # member of Platform
    flows.open_menu_link(lena, "More", "API tokens")  # the navigation's menu of settings and tools
    expect(lena.get_by_role("heading", name="API tokens")).to_be_visible()
    expect(lena.get_by_text("You have no API tokens.")).to_be_visible()
    lena.get_by_label("Name").fill("nightly key report")
    lena.get_by_label("Read and write").check()
    lena.get_by_label("Expires after").select_option(label="30 days")
    shots(lena, "new token form")
    lena.get_by_role("button", name="Create token").click()
    expect(lena.get_by_text("Copy it now: it is shown this once")).to_be_visible()
    secret = lena.get_by_role("textbox", name="Your API token").input_value().strip()
    assert TOKEN.match(secret), f"not a govsite API token: {secret[:6]}..."
    shots(lena, "token shown once")

    # A script uses it: who am I, then a key request for Platform.
    api = httpx.Client(base_url=e2e_site.base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    me = api.get("/api/v1/me/")
    assert me.status_code == 200, me.text
    assert me.json()["email"].startswith("lena@") and me.json()["token"]["scope"] == "write"
    created = api.post(
        "/api/v1/key-requests/",
        json={
            "team": "platform",
            "purpose": "Nightly report of the team's keys",
            "data_classification": "internal",
            "models": ["gpt-4o"],
            "monthly_budget": "15",
            "expiry_days": 30,
        },
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    bad = api.post("/api/v1/key-requests/", json={"team": "platform", "monthly_budget": "lots", "colour": "red"})
    assert bad.status_code == 400
    assert {"monthly_budget", "colour", "purpose"} <= set(bad.json()["error"]["fields"])

    # What the script did is Lena's, in the site: the request is pending in her list.
    lena.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    row = lena.get_by_role("row").filter(has=lena.get_by_role("link", name=f"#{request_id}", exact=True))
    expect(row).to_contain_text("Pending")
    shots(lena, "the request made through the API is pending")

    # Back on the token page the secret is gone; the token is listed by its first characters, used.
    flows.open_menu_link(lena, "More", "API tokens")  # the navigation's menu of settings and tools
    token_row = lena.get_by_role("row").filter(has_text="nightly key report")
    expect(token_row).to_contain_text(secret[:12])
    expect(token_row).to_contain_text("active")
    expect(token_row).not_to_contain_text("never")  # last used: just now
    assert secret not in lena.content()
    shots(lena, "token listed without its secret")

    # The docs: Swagger UI, every asset from the site itself.
    outside: list[str] = []
    lena.on(
        "request",
        lambda request: (
            None if request.url.startswith((e2e_site.base_url, "data:", "blob:")) else outside.append(request.url)
        ),
    )
    failed: list[str] = []
    lena.on("requestfailed", lambda request: failed.append(request.url))
    assets: list[tuple[str, int]] = []
    lena.on("response", lambda response: assets.append((response.url, response.status)))
    flows.open_menu_link(lena, "More", "API docs")
    expect(lena.locator(".swagger-ui .info .title")).to_contain_text("govsite API")
    expect(lena.locator(".opblock-summary-path", has_text="/api/v1/key-requests/").first).to_be_visible()
    expect(lena.locator(".opblock-tag", has_text="keys")).to_be_visible()
    shots(lena, "api docs")
    assert not outside, f"the docs page fetched from outside the site: {outside}"
    assert not failed, f"requests of the docs page failed: {failed}"
    static = [(url, status) for url, status in assets if "/static/drf_spectacular_sidecar/" in url]
    assert {url.rsplit("/", 1)[-1] for url, _ in static} >= {"swagger-ui.css", "swagger-ui-bundle.js"}
    assert all(status == 200 for _, status in static), static
    assert any(url.endswith("/api/schema/") and status == 200 for url, status in assets), assets

    # Revoked from the site: the script's next call is refused.
    lena.goto("/settings/api-tokens/")
    lena.get_by_role("row").filter(has_text="nightly key report").get_by_role("link", name="Revoke").click()
    expect(lena.get_by_role("heading", name="Revoke nightly key report?")).to_be_visible()
    lena.get_by_role("button", name="Revoke token").click()
    expect(lena.get_by_text("Token nightly key report revoked")).to_be_visible()
    expect(lena.get_by_role("row").filter(has_text="nightly key report")).to_contain_text("revoked")
    shots(lena, "token revoked")
    refused = api.get("/api/v1/me/")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "This API token was revoked."
    api.close()
