"""Signing in through the identity provider without a browser: httpx keeps the cookies and submits
the forms a person would (govsite's "Sign in with" button, the provider's login and consent forms)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

PROVIDER_ID = "sso"  # settings.py registers the OIDC app with this provider_id
# allauth's openid_connect callback: /accounts/ + oidc/<provider_id>/login/callback/
CALLBACK_PATH = f"/accounts/oidc/{PROVIDER_ID}/login/callback/"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    field_names: list[str] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=attrs.get("action", ""), method=attrs.get("method", "get").lower()))
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1].field_names.append(attrs["name"])
            if attrs.get("type") == "hidden" or attrs.get("value"):
                self.forms[-1].fields[attrs["name"]] = attrs.get("value", "")


def forms_of(response: httpx.Response) -> list[Form]:
    parser = _FormParser()
    parser.feed(response.text)
    return parser.forms


def submit(client: httpx.Client, response: httpx.Response, form: Form, **values: str) -> httpx.Response:
    """Post a form found on `response` as a browser would: its hidden fields plus what the person typed."""
    url = urljoin(str(response.url), form.action or str(response.url))
    return client.request(form.method.upper(), url, data={**form.fields, **values})


@dataclass
class SsoLogin:
    """How a sign-in through the identity provider ended, and the client that holds its cookies."""

    client: httpx.Client
    response: httpx.Response
    urls: list[str]
    # The provider's prompts the person answered, e.g. ["login", "confirm"] (sign-in, then consent).
    answered: list[str] = field(default_factory=list)

    @property
    def final_path(self) -> str:
        return urlsplit(str(self.response.url)).path

    @property
    def provider_sent_a_code(self) -> bool:
        """The identity provider authenticated the person and sent govsite an authorization code."""
        return any(CALLBACK_PATH in url and "code=" in url for url in self.urls)

    def signed_in(self, site_url: str) -> bool:
        home = self.client.get(f"{site_url}/", follow_redirects=False)
        return home.status_code == 200


def sso_login(site_url: str, email: str, password: str = "") -> SsoLogin:
    """The authorization-code flow as a person walks it: govsite's "Sign in with" button, the provider's
    login form, its consent form, and back to govsite's callback."""
    client = httpx.Client(follow_redirects=True, timeout=30)
    urls: list[str] = []
    client.event_hooks["response"] = [lambda r: urls.append(str(r.request.url))]
    page = client.get(f"{site_url}/accounts/login/")
    assert page.status_code == 200, page.text
    button = next((f for f in forms_of(page) if f"/accounts/oidc/{PROVIDER_ID}/login/" in f.action), None)
    assert button is not None, f"no 'Sign in with' SSO button on the login page:\n{page.text}"
    response = submit(client, page, button)
    answered: list[str] = []
    for _ in range(4):  # the provider's prompts: login, then consent
        forms = [f for f in forms_of(response) if "/interaction/" in f.action]
        if not forms or response.status_code != 200:
            break
        form = forms[0]
        typed = {"email": email, "password": password} if "email" in form.field_names else {}
        answered.append(form.action.rstrip("/").rsplit("/", 1)[-1])
        response = submit(client, response, form, **typed)
    return SsoLogin(client, response, urls, answered)


def sso_user(email: str, *, name: str = "", groups=(), password: str = "", sub: str = "") -> dict:
    """A person as the identity provider knows them."""
    return {"sub": sub or f"idp-{email}", "email": email, "name": name, "groups": list(groups), "password": password}
