"""Personal API tokens: they authenticate as their person, and every refusal is a 401/403 JSON answer
with an `api_token.refused` audit event that says why."""

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from govsite.accounts import services as accounts
from govsite.api import services
from govsite.api.models import ApiToken
from keys.models import KeyRequest
from tests.api.helpers import call, make_token
from tests.keys.conftest import classification

pytestmark = pytest.mark.django_db


def _bearer(secret: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {secret}"})


def _key_request_body(team, model):
    classification("internal")
    return {
        "team": team.slug,
        "purpose": "CI summaries",
        "data_classification": "internal",
        "models": [model.name],
        "monthly_budget": "20",
        "expiry_days": 30,
    }


def _refusals():
    return list(AuditEvent.objects.filter(action="api_token.refused").order_by("seq"))


def test_a_token_acts_as_its_person_and_notes_its_use(member_a_user):
    secret = make_token(member_a_user, scope="read")
    response = _bearer(secret).get(reverse("api_me"))
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == member_a_user.email
    assert body["token"]["scope"] == "read" and body["token"]["prefix"] == secret[:12]
    assert ApiToken.objects.get(prefix=secret[:12]).last_used_at is not None
    assert _refusals() == []


def test_a_session_call_has_no_token(member_a_client):
    assert member_a_client.get(reverse("api_me")).json()["token"] is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"expires_in": timedelta(seconds=-1)}, "expired"),
        ({"revoked_at": timezone.now() - timedelta(hours=1)}, "revoked"),
    ],
)
def test_an_expired_or_revoked_token_is_refused_with_401_and_audited(member_a_user, fields, reason):
    secret = make_token(member_a_user, **fields)
    response = _bearer(secret).get(reverse("api_me"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    (event,) = _refusals()
    assert event.data["reason"] == reason
    assert event.data["prefix"] == secret[:12]
    assert event.target_type == "api.apitoken" and event.actor_id == member_a_user.pk
    assert event.data["path"] == reverse("api_me")


def test_a_deactivated_persons_token_is_refused_and_audited(member_a_user):
    secret = make_token(member_a_user)
    member_a_user.is_active = False
    member_a_user.save(update_fields=["is_active"])
    assert _bearer(secret).get(reverse("api_me")).status_code == 401
    assert [e.data["reason"] for e in _refusals()] == ["user_inactive"]


def test_a_read_only_token_reads_but_a_write_is_refused_403_audited_and_nothing_written(
    member_a_user, team_a, open_model
):
    client = _bearer(make_token(member_a_user, scope="read"))
    assert client.get(reverse("api_key_requests")).status_code == 200
    events = AuditEvent.objects.count()
    response = call(client, "post", reverse("api_key_requests"), _key_request_body(team_a, open_model))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "read-only" in response.json()["error"]["message"]
    assert KeyRequest.objects.count() == 0
    assert AuditEvent.objects.count() == events + 1
    (event,) = _refusals()
    assert event.data["reason"] == "read_only" and event.data["method"] == "POST"


def test_a_write_token_writes_without_csrf_and_the_write_is_the_persons(member_a_user, team_a, open_model):
    client = _bearer(make_token(member_a_user, scope="write"))
    client.handler.enforce_csrf_checks = True
    response = call(client, "post", reverse("api_key_requests"), _key_request_body(team_a, open_model))
    assert response.status_code == 201, response.json()
    event = AuditEvent.objects.get(action="key_request.created")
    assert event.actor_id == member_a_user.pk


def test_a_session_write_needs_the_csrf_token(member_a_user, team_a, open_model):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member_a_user)
    response = call(client, "post", reverse("api_key_requests"), _key_request_body(team_a, open_model))
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    assert KeyRequest.objects.count() == 0


@pytest.mark.parametrize(
    "header",
    [
        "Bearer gst_not-a-token-govsite-knows",
        "Bearer gsi_an-ingest-token-is-not-an-api-token",
        "Bearer sk-a-gateway-key",
        "Bearer ",
        "Bearer two tokens",
    ],
)
def test_an_unknown_bearer_is_refused_but_not_written_to_the_audit_chain(db, header):
    events = AuditEvent.objects.count()
    response = Client(headers={"Authorization": header}).get(reverse("api_me"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert AuditEvent.objects.count() == events


def test_a_token_never_grants_more_than_its_person(member_a_user, member_b_user, team_b, open_model, file_request):
    request = file_request(member_b_user, team_b, [open_model])
    client = _bearer(make_token(member_a_user, scope="write"))
    assert (
        call(client, "post", reverse("api_approval_decide", args=[request.pk]), {"decision": "approve"}).status_code
        == 403
    )
    assert client.get(reverse("api_key_request_detail", args=[request.pk])).status_code == 404


# --- the services ---------------------------------------------------------------------------------------------


def test_create_stores_only_the_hash_and_audits_without_the_secret(member_a_user):
    token, secret = services.api_token_create(
        user=member_a_user, name="nightly export", scope="read", expires_at=timezone.now() + timedelta(days=30)
    )
    assert secret.startswith("gst_") and len(secret) > 40
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:12]
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.target_id == str(token.pk) and event.data["scope"] == "read"
    assert secret not in str(event.data) and secret[12:] not in str(ApiToken.objects.values().get())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"expires_at": None}, "expires_at"),
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, "expires_at"),
        ({"expires_at": timezone.now() + timedelta(days=366)}, "expires_at"),
        ({"name": "  "}, "name"),
        ({"scope": "admin"}, "scope"),
    ],
)
def test_create_refuses_bad_input_by_field_and_writes_nothing(member_a_user, change, field):
    values = {"name": "ci", "scope": "write", "expires_at": timezone.now() + timedelta(days=30), **change}
    with pytest.raises(ValidationError) as excinfo:
        services.api_token_create(user=member_a_user, **values)
    assert field in excinfo.value.message_dict
    assert not ApiToken.objects.exists() and not AuditEvent.objects.exists()


def test_an_auditors_write_token_still_changes_nothing_an_auditor_may_not(auditor_user, team_a):
    expires = timezone.now() + timedelta(days=30)
    _, secret = services.api_token_create(user=auditor_user, name="evidence", scope="write", expires_at=expires)
    client = _bearer(secret)
    response = call(client, "post", reverse("api_budgets"), {"team": team_a.slug, "amount": "10"})
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="budget.created").exists()


def test_a_person_holds_at_most_20_live_tokens(member_a_user):
    for _ in range(services.MAX_ACTIVE_TOKENS):
        make_token(member_a_user)
    with pytest.raises(ValidationError):
        services.api_token_create(
            user=member_a_user, name="one more", scope="read", expires_at=timezone.now() + timedelta(days=1)
        )


def test_revoke_by_owner_or_admin_only_once_and_audited(member_a_user, member_b_user, admin_user):
    make_token(member_a_user)
    token = ApiToken.objects.get()
    with pytest.raises(PermissionDenied):
        services.api_token_revoke(token=token, actor=member_b_user)
    services.api_token_revoke(token=token, actor=admin_user)
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert event.actor_id == admin_user.pk and event.data["owner"] == member_a_user.email
    with pytest.raises(services.InvalidTransition):
        services.api_token_revoke(token=token, actor=member_a_user)


@pytest.mark.parametrize("via", ["admin", "scim"])
def test_deactivation_revokes_the_tokens_and_a_reactivation_does_not_bring_them_back(member_a_user, admin_user, via):
    secret = make_token(member_a_user)
    assert _bearer(secret).get(reverse("api_me")).status_code == 200
    if via == "admin":
        accounts.user_deactivate(actor=admin_user, user=member_a_user)
        accounts.user_reactivate(actor=admin_user, user=member_a_user)
    else:
        scim, _ = accounts.scim_token_create(actor=admin_user, name="okta")
        person = accounts.ScimUserInput(email=member_a_user.email, active=False)
        accounts.scim_user_update(token=scim, user=member_a_user, data=person)
        accounts.scim_user_update(token=scim, user=member_a_user, data=accounts.ScimUserInput(email=person.email))
    member_a_user.refresh_from_db()
    assert member_a_user.is_active

    token = ApiToken.objects.get(prefix=secret[:12])
    assert token.status == "revoked"
    revoked = AuditEvent.objects.get(action="api_token.revoked", target_id=str(token.pk))
    assert revoked.data["reason"] == "the person was deactivated"
    assert revoked.seq > AuditEvent.objects.get(action="user.deactivated").seq
    response = _bearer(secret).get(reverse("api_me"))
    assert response.status_code == 401
    assert [e.data["reason"] for e in _refusals()] == ["revoked"]
    # Their new token works: the person is back, not their old credentials.
    assert _bearer(make_token(member_a_user)).get(reverse("api_me")).status_code == 200


# --- refusals are recorded once per window per token and source ------------------------------------


def test_a_revoked_token_sent_again_and_again_writes_one_event_per_source_and_window(member_a_user):
    secret = make_token(member_a_user, revoked_at=timezone.now())
    for _ in range(40):
        assert _bearer(secret).get(reverse("api_me"), REMOTE_ADDR="198.51.100.7").status_code == 401
    assert _bearer(secret).get(reverse("api_me"), REMOTE_ADDR="203.0.113.9").status_code == 401
    assert [(e.data["reason"], e.data["source"]) for e in _refusals()] == [
        ("revoked", "198.51.100.7"),
        ("revoked", "203.0.113.9"),
    ]


def test_the_next_windows_event_counts_the_refusals_of_the_window_before(member_a_user, settings):
    settings.API_TOKEN_REFUSAL_WINDOW_SECONDS = 60
    token = ApiToken.objects.get(prefix=make_token(member_a_user)[:12])
    start = 1_000_020.0  # inside a window: [1_000_020, 1_000_080)

    def refuse(at):
        return services.api_token_refuse(token=token, reason="revoked", method="GET", path="/", source="x", now=at)

    assert refuse(start) is True
    assert [refuse(start + i) for i in range(1, 25)] == [False] * 24
    assert refuse(start + 60) is True  # the next window
    first, second = _refusals()
    assert first.data["refused_in_previous_window"] == 0
    assert second.data["refused_in_previous_window"] == 25 and second.data["window_seconds"] == 60
