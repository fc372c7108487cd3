"""Password login: audited, throttled, refused to deactivated people; deactivation ends sessions at once."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from govsite.accounts import services
from govsite.accounts.models import UserSession
from tests.audit.helpers import actions, new_events
from tests.factories import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN = reverse("account_login")
WRONG = "The email address and/or password you specified are not correct."
TOO_MANY = "Too many failed login attempts. Try again later."


@pytest.fixture
def person(team_a):
    return make_user(email="pat@example.com", password=PASSWORD, teams={team_a: "member"})


def log_in(client: Client, email: str, password: str):
    return client.post(LOGIN, {"login": email, "password": password})


def is_logged_in(client: Client) -> bool:
    return client.get(reverse("home")).status_code == 200


def test_password_login_signs_in_and_is_audited(client, person):
    with new_events() as events:
        response = log_in(client, "pat@example.com", PASSWORD)
    assert response.status_code == 302
    assert response.url == reverse("home")
    assert is_logged_in(client)
    assert actions(events) == ["user.login"]
    assert (events[0].actor_id, events[0].data) == (person.pk, {"method": "password"})
    assert UserSession.objects.filter(user=person, session_key=client.session.session_key).exists()


def test_wrong_password_is_refused_and_audited_as_a_failed_login(client, person):
    with new_events() as events:
        response = log_in(client, "pat@example.com", "not the password")
    assert response.status_code == 200
    assert WRONG in response.content.decode()
    assert not is_logged_in(client)
    assert actions(events) == ["user.login_failed"]
    assert events[0].actor_id is None
    assert events[0].actor_label == "pat@example.com"
    assert events[0].data == {"email": "pat@example.com", "method": "password"}


def test_unknown_email_is_audited_as_a_failed_login(client, person):
    with new_events() as events:
        log_in(client, "nobody@example.com", PASSWORD)
    assert actions(events) == ["user.login_failed"]
    assert events[0].data["email"] == "nobody@example.com"


def test_repeated_failed_logins_are_throttled_even_with_the_right_password(client, person):
    with new_events() as events:
        for _ in range(5):
            response = log_in(client, "pat@example.com", "guess")
            assert WRONG in response.content.decode()
        response = log_in(client, "pat@example.com", PASSWORD)

    assert TOO_MANY in response.content.decode()
    assert not is_logged_in(client)
    assert actions(events) == ["user.login_failed"] * 5


def test_throttling_one_account_does_not_lock_out_another(client, person):
    other = make_user(email="other@example.com", password=PASSWORD)
    for _ in range(5):
        log_in(client, "pat@example.com", "guess")
    assert TOO_MANY in log_in(client, "pat@example.com", PASSWORD).content.decode()
    log_in(client, other.email, PASSWORD)
    assert is_logged_in(client)


def test_deactivated_person_cannot_log_in_with_the_right_password_and_the_attempt_is_audited(client, person):
    person.is_active = False
    person.save()
    with new_events() as events:
        response = log_in(client, "pat@example.com", PASSWORD)
    assert response.status_code == 302
    assert response.url == reverse("account_inactive")
    assert not is_logged_in(client)
    assert actions(events) == ["user.login_refused"]
    assert events[0].data == {"reason": "deactivated", "method": "password"}
    assert events[0].target_id == str(person.pk)


def test_deactivating_a_person_ends_their_session_at_once(admin_client, person):
    browser = Client()
    assert log_in(browser, "pat@example.com", PASSWORD).status_code == 302
    assert is_logged_in(browser)
    session_key = browser.session.session_key

    response = admin_client.post(reverse("person_deactivate", args=[person.pk]), {"reason": "left", "confirm": "on"})
    assert response.status_code == 302

    next_request = browser.get(reverse("team_list"))
    assert next_request.status_code == 302
    assert next_request.url.startswith(f"{LOGIN}?next=")
    assert not Session.objects.filter(session_key=session_key).exists()


def test_deactivating_a_person_ends_every_one_of_their_sessions(admin_user, member_a_user):
    laptop, phone = Client(), Client()
    laptop.force_login(member_a_user)
    phone.force_login(member_a_user)
    assert is_logged_in(laptop) and is_logged_in(phone)

    services.user_deactivate(actor=admin_user, user=member_a_user)

    assert not is_logged_in(laptop)
    assert not is_logged_in(phone)
    assert not UserSession.objects.filter(user=member_a_user).exists()


def test_deactivating_one_person_leaves_other_peoples_sessions_alone(admin_user, member_a_user, member_b_client):
    services.user_deactivate(actor=admin_user, user=member_a_user)
    assert is_logged_in(member_b_client)


def test_reactivated_person_can_log_in_again(client, admin_user, person):
    services.user_deactivate(actor=admin_user, user=person)
    services.user_reactivate(actor=admin_user, user=person)
    log_in(client, "pat@example.com", PASSWORD)
    assert is_logged_in(client)
