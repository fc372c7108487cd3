"""Login protection on every deployment: failed logins are counted per account in a cache every process
shares (Redis, or without it the database cache), never per address, and the address is the client's own
(X-Forwarded-For only from TRUSTED_PROXIES)."""

from __future__ import annotations

import itertools
import re

import httpx
import pytest
from django.conf import settings as django_settings
from django.core.cache.backends.db import DatabaseCache
from django.db import connection
from django.test import RequestFactory

from govsite.web import client_ip
from tests.api.server import start_api_server
from tests.factories import make_user

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account's password
REFUSED = "Too many failed login attempts"


# --- the client's address ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ([], "198.51.100.7", "10.9.9.9", "198.51.100.7"),  # no trusted proxy: the header is ignored
        (["10.0.0.5"], "198.51.100.7", "10.9.9.9", "198.51.100.7"),  # not from the proxy: ignored
        (["10.0.0.5"], "10.0.0.5", "203.0.113.4", "203.0.113.4"),
        (["10.0.0.0/8"], "10.0.0.5", "1.2.3.4, 203.0.113.4, 10.0.0.6", "203.0.113.4"),  # the client's claim is not
        (["10.0.0.5"], "10.0.0.5", "", "10.0.0.5"),
        (["10.0.0.5"], "10.0.0.5", "not-an-address", "10.0.0.5"),
        (["2001:db8::/32"], "2001:db8::1", "2001:db8::2, 2001:db8::3", "2001:db8::2"),  # all trusted: the last
    ],
)
def test_the_forwarded_address_is_believed_only_from_trusted_proxies(settings, trusted, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


# --- against gunicorn, three workers, no Redis ------------------------------------------------------------


@pytest.fixture
def server(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the server process shares the test database, which needs PostgreSQL")
    DatabaseCache(django_settings.DATABASE_CACHE_TABLE, {}).clear()  # counters a previous run left in the table
    server = start_api_server(tmp_path, None, workers=3, env={"REDIS_URL": "", "TRUSTED_PROXIES": "127.0.0.1"})
    yield server
    server.stop()


def _login(server, email: str, password: str, address: str) -> httpx.Response:
    """One sign-in through the login form, as a browser behind the trusted proxy at `address`."""
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": address}, timeout=30) as browser:
        page = browser.get("/accounts/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return browser.post(
            "/accounts/login/", data={"csrfmiddlewaretoken": csrf, "login": email, "password": password}
        )


def _signed_in(response: httpx.Response) -> bool:
    return response.status_code == 302 and "/accounts/login" not in response.headers.get("location", "")


def _worker_pids(server) -> set[str]:
    return set(re.findall(r'pid=<(\d+)> "POST /accounts/login/', server.log.read_text()))


@pytest.mark.django_db(transaction=True)
def test_the_sixth_failed_login_for_one_account_is_refused_whichever_worker_answers(server):
    make_user(email="target@example.com", password=PASSWORD)
    addresses = (f"203.0.113.{n}" for n in itertools.count(10))  # a different address each time
    for _ in range(5):
        failed = _login(server, "target@example.com", "wrong password", next(addresses))
        assert failed.status_code == 200 and REFUSED not in failed.text
    sixth = _login(server, "target@example.com", PASSWORD, next(addresses))
    assert not _signed_in(sixth) and REFUSED in sixth.text, server.tail()
    assert len(_worker_pids(server)) >= 2, "the attempts should have been answered by more than one worker"


@pytest.mark.django_db(transaction=True)
def test_thirty_failures_for_other_accounts_from_an_address_do_not_stop_someone_elses_login(server):
    make_user(email="someone@example.com", password=PASSWORD)
    make_user(email="victim@example.com", password=PASSWORD)
    office = "198.51.100.20"
    for n in range(30):
        email = "victim@example.com" if n < 5 else f"guess-{n}@example.com"
        assert not _signed_in(_login(server, email, "wrong password", office))
    assert _signed_in(_login(server, "someone@example.com", PASSWORD, office)), server.tail()
    # The guessed account is locked all the same, from any address.
    assert REFUSED in _login(server, "victim@example.com", PASSWORD, "192.0.2.1").text
