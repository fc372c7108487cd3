"""Content-Security-Policy (issue 13, point 6): on every page, the API docs included; no inline script.

The browser side ("no page reports a CSP violation in Chromium") is tests/e2e: every journey and the crawl
of every role's navigation (tests/e2e/test_site_accessibility.py) listen for violations.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)


def _directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("name", ["home", "key_list", "api_docs", "settings_api_tokens", "my_usage"])
def test_every_page_has_a_policy_that_allows_only_the_sites_own_scripts(member_a_client, name):
    response = member_a_client.get(reverse(name))
    assert response.status_code == 200
    policy = _directives(response)
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no other host
    assert policy["default-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]  # nothing on a page can send data to another host
    page = response.content.decode()
    assert not INLINE_SCRIPT.search(page), INLINE_SCRIPT.search(page).group(0)
    assert not EVENT_HANDLER.search(page), EVENT_HANDLER.search(page).group(0)


def test_the_login_page_and_a_refusal_have_the_policy_too(client, member_a_client):
    assert "script-src 'self'" in client.get(reverse("account_login"))["Content-Security-Policy"]
    refused = member_a_client.get(reverse("audit_log"))
    assert refused.status_code == 403
    assert "script-src 'self'" in refused["Content-Security-Policy"]


def test_no_template_has_an_inline_script_or_an_event_handler_attribute():
    found = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        found += [f"{template.relative_to(TEMPLATES)}: {m.group(0)}" for m in INLINE_SCRIPT.finditer(text)]
        found += [f"{template.relative_to(TEMPLATES)}: {m.group(0)}" for m in EVENT_HANDLER.finditer(text)]
    assert not found, found


def test_the_api_docs_page_loads_swagger_ui_from_the_sites_static_files(member_a_client):
    page = member_a_client.get(reverse("api_docs")).content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts and all(src.startswith("/static/") for src in scripts), scripts
    assert "/static/js/api-docs.js" in scripts
    assert f'data-schema-url="{reverse("api_schema")}"' in page
