"""Forms read by a screen reader (issue 19, point 2), on the markup every form shares (templates/_form.html):
help texts and errors are linked by aria-describedby to ids that exist, a failed submit shows an error
summary whose links lead to the fields, and every group of radios or checkboxes is a fieldset with a legend.
(The summary taking the focus is shown in the browser: tests/e2e/test_keyboard_journey.py.)"""

from __future__ import annotations

from collections import defaultdict
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.keys.conftest import cheap_model, open_model  # noqa: F401 - fixtures: models to choose from

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_model", "cheap_model")]


class _Markup(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.described: list[tuple[str, str]] = []  # (element's name or id, the id it points to)
        self.summary_links: list[str] = []
        self.choices: dict[str, list[bool]] = defaultdict(list)  # name -> inside a fieldset with a legend?
        self._fieldsets: list[dict] = []
        self._summary_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for target in (attrs.get("aria-describedby") or "").split():
            self.described.append((attrs.get("name") or attrs.get("id") or tag, target))
        if "error-summary" in (attrs.get("class") or "").split():
            self._summary_depth = 1
        elif self._summary_depth and tag == "div":
            self._summary_depth += 1
        if self._summary_depth and tag == "a":
            self.summary_links.append(attrs.get("href", ""))
        if tag == "fieldset":
            self._fieldsets.append({"legend": False})
        if tag == "legend" and self._fieldsets:
            self._fieldsets[-1]["legend"] = True
        if tag == "input" and attrs.get("type") in ("radio", "checkbox"):
            in_group = bool(self._fieldsets) and self._fieldsets[-1]["legend"]
            self.choices[attrs["name"]].append(in_group)

    def handle_endtag(self, tag):
        if tag == "fieldset" and self._fieldsets:
            self._fieldsets.pop()
        if self._summary_depth and tag == "div":
            self._summary_depth -= 1


def _check(response) -> _Markup:
    markup = _Markup()
    markup.feed(response.content.decode())
    missing = [(who, target) for who, target in markup.described if target not in markup.ids]
    assert not missing, f"aria-describedby names ids the page does not have: {missing}"
    for name, inside in markup.choices.items():
        if len(inside) > 1:  # a group of options: its question is the legend
            assert all(inside), f"the options of {name} are not in a fieldset with a legend"
    return markup


def test_the_key_request_form_links_help_and_groups_its_options(member_a_client):
    markup = _check(member_a_client.get(reverse("key_request_create")))
    assert {"kind", "models"} <= set(markup.choices)
    assert any(target.endswith("_helptext") for _, target in markup.described)


def test_a_failed_submit_shows_a_summary_linking_to_each_field_in_error(member_a_client):
    response = member_a_client.post(reverse("key_request_create"), {"kind": "personal", "monthly_budget": "x"})
    assert response.status_code in (200, 400)
    markup = _check(response)
    errors = response.context["form"].errors
    assert {"purpose", "models", "monthly_budget"} <= set(errors)
    assert len(markup.summary_links) == sum(len(e) for name, e in errors.items() if name != "__all__")
    for link in markup.summary_links:
        assert link.startswith("#") and link[1:] in markup.ids, link
    assert "#id_models_group" in markup.summary_links  # a group's link leads to its fieldset
    for name in ("purpose", "models", "monthly_budget"):
        assert f"id_{name}_error" in markup.ids
    assert ("monthly_budget", "id_monthly_budget_error") in markup.described
    assert ("purpose", "id_purpose_error") in markup.described


def test_the_api_token_form_groups_its_scope(member_a_client):
    response = member_a_client.post(reverse("settings_api_tokens"), {"name": ""})
    markup = _check(response)
    assert any(len(inside) > 1 for inside in markup.choices.values())  # the scope radios, in a fieldset
    assert markup.summary_links


def test_the_new_person_form_groups_the_org_roles(admin_client):
    _check(admin_client.get(reverse("person_create")))
