"""Journey a: an employee asks for a key, an approver approves it, the employee sees it exactly once."""

import re

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install the dev extra")

from playwright.sync_api import expect  # noqa: E402

from tests.e2e import flows  # noqa: E402

pytestmark = pytest.mark.slow  # a server, a worker, a gateway and a browser


def test_employee_requests_approver_approves_employee_reveals_once(people, shots, e2e_site):
    erin = people.login("erin")  # member of Platform
    shots(erin, "employee signed in")

    request_id = flows.request_key(erin, team="Platform", purpose="Claude Code for the CI migration")
    expect(erin.locator(".pagehead .status")).to_have_text("Pending")
    expect(erin.get_by_text("No decision yet.")).to_be_visible()
    shots(erin, "request sent and pending")

    erin.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    row = erin.get_by_role("row").filter(has=erin.get_by_role("link", name=f"#{request_id}", exact=True))
    expect(row).to_contain_text("Pending")
    expect(erin.get_by_text("You have no keys.")).to_be_visible()
    shots(erin, "key list shows the request pending")

    paul = people.login("paul")  # Platform's approver, in a browser of his own
    expect(paul.get_by_role("link", name=re.compile(r"^Needs me\s+\d+"))).to_be_visible()
    flows.open_queue(paul, "key_requests")
    expect(paul.locator(f"#request-{request_id}")).to_contain_text("Claude Code for the CI migration")
    shots(paul, "approver sees the request in the queue")
    flows.approve_key_request(paul, request_id, requester="Erin Engineer")
    shots(paul, "approver approved")

    erin.goto(f"/keys/requests/{request_id}/")
    expect(erin.locator(".pagehead .status")).to_have_text("Approved")
    expect(erin.get_by_text(re.compile(r"Paul Platform-Lead: Approve"))).to_be_visible()
    flows.open_key_of_request(erin, request_id)
    flows.wait_until_revealable(erin)  # the RQ worker has created the key at the gateway
    expect(erin.locator(".pagehead .status")).to_have_text("Active")
    shots(erin, "key active and ready to reveal")

    secret = flows.reveal(erin)
    assert not people.person("erin").dialogs  # confirmed in the page, not a browser confirm()
    expect(erin.get_by_text("This is the only time the key is shown.")).to_be_visible()
    snippets = erin.locator("pre").all_inner_texts()
    assert f"export ANTHROPIC_AUTH_TOKEN={secret}" in "\n".join(snippets)
    assert f"export ANTHROPIC_BASE_URL={e2e_site.gateway.url}" in "\n".join(snippets)
    assert f"export OPENAI_BASE_URL={e2e_site.gateway.url}/v1" in "\n".join(snippets)
    shots(erin, "key revealed once with the snippets")

    # The secret is the one the gateway knows.
    response = e2e_site.gateway.chat(secret, "gpt-4o")
    assert response.status_code == 200, response.text

    # Reloading sends the reveal again: govsite no longer has the secret, only its last four characters.
    erin.reload()
    masked = f"sk-...{secret[-4:]}"
    expect(erin.get_by_text("This key was already revealed; it is shown only once.")).to_be_visible()
    expect(erin.locator("dl.facts code").first).to_have_text(masked)  # then the gateway alias
    expect(erin.get_by_role("button", name="Reveal key (once)")).to_have_count(0)
    assert secret not in erin.content()
    shots(erin, "reload shows only the masked key")

    erin.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    expect(erin.get_by_role("table").first.get_by_text(masked)).to_be_visible()
    assert secret not in erin.content()
    shots(erin, "key list shows only the masked key")


def test_request_form_shows_service_fields_only_for_a_service_key(people, shots):
    tom = people.login("tom")
    tom.goto("/keys/request/")
    service_name = tom.get_by_label("Service or project")
    owner = tom.get_by_label("Owner of the service key")
    expect(tom.get_by_label("Personal key", exact=True)).to_be_checked()
    shots(tom, "personal key form")
    expect(service_name).to_be_hidden(timeout=2_000)
    expect(owner).to_be_hidden(timeout=2_000)
    tom.get_by_label("Service key", exact=True).check()
    expect(service_name).to_be_visible()
    expect(owner).to_be_visible()
    shots(tom, "service key form")
    tom.get_by_label("Personal key", exact=True).check()
    expect(service_name).to_be_hidden(timeout=2_000)
    expect(owner).to_be_hidden(timeout=2_000)
