"""Every GatewayClient method against a gateway process, and the typed errors govsite acts on.

The bodies here are shared: they run against the sandbox, and tests/live/test_live_client.py runs
the very same functions against a real LiteLLM proxy by parametrizing the `gateway` fixture. Every
test therefore takes `gateway`, uses unique names and registers what it creates for cleanup.
"""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from govsite.gateway.client import (
    AliasConflict,
    Conflict,
    CustomKeysDisabled,
    EnterpriseOnly,
    GatewayClient,
    NoDatabase,
    NotFound,
    SecretAlreadyUsed,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from tests.gateway_fixtures import free_port


def _new_key(gateway, client, **fields) -> dict:
    fields.setdefault("key_alias", gateway.unique("key"))
    key = client.key_generate(**fields)
    gateway.created_keys.append(key["token"])
    return key


def _new_team(gateway, client, **fields) -> dict:
    fields.setdefault("team_id", gateway.unique("team"))
    team = client.team_new(**fields)
    gateway.created_teams.append(team["team_id"])
    return team


# --- keys -------------------------------------------------------------------------------------------


def test_key_generate_returns_the_secret_once_and_stores_its_sha256(gateway):
    with gateway.client() as client:
        key = _new_key(gateway, client, models=["gpt-4o"], max_budget=5.0, duration="90d", metadata={"owner": "ada"})
        info = client.key_info(key=key["key"])["info"]

    assert key["key"].startswith("sk-")
    assert key["token"] == hashlib.sha256(key["key"].encode()).hexdigest()
    assert key["key_name"] == f"sk-...{key['key'][-4:]}"
    assert key["expires"] is not None
    assert info["key_alias"] == key["key_alias"]
    assert info["max_budget"] == 5.0
    assert info["models"] == ["gpt-4o"]
    assert info["metadata"]["owner"] == "ada"
    assert "key" not in info or info["key"] != key["key"], "the secret is never shown again"


def test_key_generate_accepts_a_custom_secret(gateway):
    secret = f"sk-govsite-{gateway.unique('secret')}"
    with gateway.client() as client:
        key = _new_key(gateway, client, key=secret)

    assert key["key"] == secret
    assert key["token"] == hashlib.sha256(secret.encode()).hexdigest()


def test_a_secret_the_gateway_already_holds_is_noticed_not_reported_as_made(gateway):
    """LiteLLM answers 200 and keeps the old key: the client looks the key up and says so."""
    secret = f"sk-govsite-{gateway.unique('secret')}"
    with gateway.client() as client:
        first = _new_key(gateway, client, key=secret, metadata={"govsite_key_id": 1})
        with pytest.raises(SecretAlreadyUsed) as caught:
            client.key_generate(key=secret, key_alias=gateway.unique("key"), metadata={"govsite_key_id": 2})
        info = client.key_info(key=secret)["info"]

    assert caught.value.retryable is False
    assert "key_alias" in str(caught.value) and "metadata" in str(caught.value)
    assert (info["key_alias"], info["metadata"]["govsite_key_id"]) == (first["key_alias"], 1), "the old key is kept"


def test_disabled_custom_keys_are_a_gateway_configuration_problem_not_a_bad_master_key(gateway):
    gateway.require_sandbox("a real proxy's config is not changed by the tests (the sandbox's 403 is LiteLLM's own)")
    gateway.gateway_settings(disable_custom_api_keys=True)
    with gateway.client() as client, pytest.raises(CustomKeysDisabled) as caught:
        client.key_generate(key=f"sk-govsite-{gateway.unique('secret')}", key_alias=gateway.unique("key"))

    assert not isinstance(caught.value, Unauthorized)
    assert (caught.value.status, caught.value.retryable) == (403, False)
    assert "disable_custom_api_keys" in str(caught.value)


def test_key_info_takes_the_secret_or_the_hash(gateway):
    with gateway.client() as client:
        key = _new_key(gateway, client)
        by_secret = client.key_info(key=key["key"])
        by_hash = client.key_info(key=key["token"])

    assert by_secret["info"]["key_alias"] == by_hash["info"]["key_alias"] == key["key_alias"]
    assert by_secret["key"] == key["token"], "the client hashes the secret before it leaves the process"


def test_key_update_merges_fields_and_replaces_metadata_wholesale(gateway):
    with gateway.client() as client:
        key = _new_key(gateway, client, max_budget=1.0, metadata={"a": 1, "b": 2})
        client.key_update(key=key["key"], max_budget=3.0, metadata={"c": 3})
        info = client.key_info(key=key["token"])["info"]

    assert info["max_budget"] == 3.0
    assert info["metadata"].get("c") == 3
    assert "a" not in info["metadata"]


def test_key_update_by_alias(gateway):
    with gateway.client() as client:
        key = _new_key(gateway, client)
        client.key_update(key_alias=key["key_alias"], rpm_limit=7)
        assert client.key_info(key=key["token"])["info"]["rpm_limit"] == 7


def test_key_block_and_unblock(gateway):
    with gateway.client() as client:
        key = _new_key(gateway, client)
        client.key_block(key=key["key"])
        assert client.key_info(key=key["token"])["info"]["blocked"] is True
        client.key_unblock(key=key["token"])
        assert client.key_info(key=key["token"])["info"]["blocked"] is False


def test_key_delete_by_key_and_by_alias(gateway):
    with gateway.client() as client:
        first = _new_key(gateway, client)
        second = _new_key(gateway, client)
        # LiteLLM echoes the list it was given (hashed by the client), not the keys it found.
        gone = "0" * 64
        assert client.key_delete(keys=[first["key"], gone])["deleted_keys"] == [first["token"], gone]
        assert client.key_delete(key_aliases=[second["key_alias"]])["deleted_keys"] == [second["key_alias"]]
        for key in (first, second):
            with pytest.raises(NotFound):
                client.key_update(key=key["token"], max_budget=1.0)


def test_a_deleted_alias_can_be_used_again(gateway):
    """Open-source rotation: the new key may take the old one's alias once the old key is gone."""
    with gateway.client() as client:
        old = _new_key(gateway, client)
        client.key_delete(keys=[old["token"]])
        new = _new_key(gateway, client, key_alias=old["key_alias"])

    assert new["key_alias"] == old["key_alias"]
    assert new["token"] != old["token"]


def test_key_list_filters_and_pages(gateway):
    user_id = gateway.unique("user")
    with gateway.client() as client:
        made = {_new_key(gateway, client, user_id=user_id)["token"] for _ in range(3)}
        first = client.key_list(user_id=user_id, size=2)
        second = client.key_list(user_id=user_id, size=2, page=2)
        everything = client.key_list_all(user_id=user_id)
        by_alias = client.key_list(key_alias=everything[0]["key_alias"])

    assert first["total_count"] == 3
    assert first["total_pages"] == 2
    assert first["current_page"] == 1
    assert len(first["keys"]) == 2
    assert len(second["keys"]) == 1
    assert all(isinstance(k, dict) for k in first["keys"]), "return_full_object is always sent"
    assert {k["token"] for k in everything} == made
    assert [k["key_alias"] for k in by_alias["keys"]] == [everything[0]["key_alias"]]
    gateway.created_users.append(user_id)


def test_key_list_all_pages_past_one_hundred(gateway):
    gateway.require_sandbox("creates 105 keys; too many to leave to a shared proxy's cleanup")
    user_id = gateway.unique("user")
    with gateway.client() as client:
        for _ in range(105):
            _new_key(gateway, client, user_id=user_id)
        assert len(client.key_list_all(user_id=user_id)) == 105


# --- teams and users --------------------------------------------------------------------------------


def test_team_new_info_update(gateway):
    with gateway.client() as client:
        team = _new_team(gateway, client, team_alias="Payments", models=["gpt-4o"], max_budget=100.0)
        client.team_update(team_id=team["team_id"], max_budget=250.0, metadata={"cost_center": "CC-200"})
        info = client.team_info(team_id=team["team_id"])

    assert info["team_id"] == team["team_id"]
    assert info["team_info"]["team_alias"] == "Payments"
    assert info["team_info"]["max_budget"] == 250.0
    assert info["team_info"]["metadata"]["cost_center"] == "CC-200"


def test_team_new_twice_is_a_conflict(gateway):
    with gateway.client() as client:
        team = _new_team(gateway, client)
        with pytest.raises(Conflict) as caught:
            client.team_new(team_id=team["team_id"])
    assert caught.value.retryable is False


def test_user_new_creates_no_key(gateway):
    user_id = gateway.unique("user")
    with gateway.client() as client:
        user = client.user_new(user_id=user_id, user_email=f"{user_id}@example.com", user_role="internal_user")
        gateway.created_users.append(user_id)
        with pytest.raises(Conflict):
            client.user_new(user_id=user_id)
        assert client.key_list(user_id=user_id)["total_count"] == 0

    assert user["user_id"] == user_id
    assert user.get("key") is None


# --- spend logs -------------------------------------------------------------------------------------


def test_spend_logs_v2_answers_a_page(gateway):
    now = datetime.now(UTC)
    with gateway.client() as client:
        page = client.spend_logs_v2(start=now - timedelta(minutes=5), end=now, page_size=10)

    assert set(page) >= {"data", "total", "page", "page_size", "total_pages", "total_is_capped"}
    assert page["page"] == 1
    assert page["page_size"] == 10


# --- typed errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.key_info(key="0" * 64),
        lambda c: c.key_update(key="0" * 64, max_budget=1.0),
        lambda c: c.key_update(key_alias="govsite-test-no-such-alias", max_budget=1.0),
        lambda c: c.key_block(key="0" * 64),
        lambda c: c.key_unblock(key="0" * 64),
        lambda c: c.key_delete(keys=["0" * 64]),
        lambda c: c.key_delete(key_aliases=["govsite-test-no-such-alias"]),
        lambda c: c.team_info(team_id="govsite-test-no-such-team"),
        lambda c: c.team_update(team_id="govsite-test-no-such-team", max_budget=1.0),
    ],
    ids=[
        "key_info",
        "key_update",
        "key_update_alias",
        "key_block",
        "key_unblock",
        "key_delete",
        "key_delete_alias",
        "team_info",
        "team_update",
    ],
)
def test_unknown_things_are_not_found(gateway, call):
    with gateway.client() as client, pytest.raises(NotFound) as caught:
        call(client)
    assert caught.value.status == 404
    assert caught.value.retryable is False


def test_a_taken_alias_is_an_alias_conflict(gateway):
    with gateway.client() as client:
        key = _new_key(gateway, client)
        with pytest.raises(AliasConflict) as caught:
            client.key_generate(key_alias=key["key_alias"])
        other = _new_key(gateway, client)
        with pytest.raises(AliasConflict):
            client.key_update(key=other["token"], key_alias=key["key_alias"])

    assert caught.value.status == 400
    assert caught.value.param == "key_alias"
    assert caught.value.retryable is False


def test_invalid_bodies_fail_before_they_are_sent(gateway):
    with gateway.client() as client:
        with pytest.raises(ValidationFailed) as caught:
            client.key_generate(key_alias=gateway.unique("key"), max_budjet=5)
        assert caught.value.param == "max_budjet"
        with pytest.raises(ValidationFailed):
            client.key_generate(key_alias=gateway.unique("key"), max_budget="lots")
        with pytest.raises(ValidationFailed):
            client.key_generate(key_alias=gateway.unique("key"), duration="90 days")
        with pytest.raises(ValidationFailed):
            client.key_list(size=101)
        assert client.key_list(key_alias=caught.value.param)["total_count"] == 0


def test_key_tags_need_an_enterprise_licence(gateway):
    with gateway.client() as client:
        try:
            key = client.key_generate(key_alias=gateway.unique("key"), tags=["team:payments"])
        except EnterpriseOnly as exc:
            assert exc.retryable is False
            return
        gateway.created_keys.append(key["token"])
    pytest.skip("this proxy has an Enterprise licence")


def test_a_wrong_master_key_is_unauthorized(gateway):
    with GatewayClient(gateway.url, "sk-not-the-master-key-0000", 5) as client, pytest.raises(Unauthorized) as caught:
        client.key_list()
    assert caught.value.status in (401, 403)
    assert caught.value.retryable is False


def test_a_closed_port_is_unavailable(gateway):
    closed = GatewayClient(f"http://127.0.0.1:{free_port()}", gateway.master_key, 2)
    with closed as client, pytest.raises(Unavailable) as caught:
        client.key_list()
    assert caught.value.retryable is True
    assert caught.value.status is None


def test_a_slow_gateway_times_out_as_unavailable(gateway):
    gateway.faults(delay_next=1, seconds=2)
    with gateway.client(timeout=0.5) as client:
        with pytest.raises(Unavailable) as caught:
            client.key_list()
        assert caught.value.retryable is True
        assert "timed out" in caught.value.message
    with gateway.client() as client:
        assert "keys" in client.key_list()


def test_a_500_is_unavailable_and_retryable(gateway):
    gateway.faults(fail_next=1, status=500)
    with gateway.client() as client:
        with pytest.raises(Unavailable) as caught:
            client.key_list()
        assert caught.value.status == 500
        assert caught.value.retryable is True
        assert "keys" in client.key_list(), "only the next call failed"


def test_db_not_connected_is_a_gateway_without_a_database(gateway):
    """A gateway configuration problem: trying again cannot help until an admin gives LiteLLM a database."""
    gateway.faults(
        fail_next=1, status=500, message="DB not connected. See https://docs.litellm.ai/docs/proxy/virtual_keys"
    )
    with gateway.client() as client, pytest.raises(NoDatabase) as caught:
        client.key_generate(key_alias=gateway.unique("key"))
    assert caught.value.retryable is False
    assert str(caught.value).startswith("[500] the gateway has no database")


def test_an_enterprise_refusal_on_any_status_is_enterprise_only(gateway):
    gateway.faults(fail_next=1, status=403, message="You must be a LiteLLM Enterprise user to use this feature.")
    with gateway.client() as client, pytest.raises(EnterpriseOnly):
        client.team_new(team_id=gateway.unique("team"))
