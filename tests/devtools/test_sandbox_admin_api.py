"""The sandbox's admin API answers as LiteLLM's does: pydantic 422s, dropped fields, duplicate aliases, the master
key, an existing secret kept, disabled custom keys, users not created, deletes that echo, batched spend rows
and a proxy without a database."""

import json
import sqlite3

import httpx
import pytest

from tests.devtools.sandbox_helpers import (
    error_of,
    key_info,
    new_key,
    read_rows,
    spend_logs_get,
    written_rows,
)


def _admin(sandbox, path: str, body: dict, secret: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret or sandbox.master_key}"}
    return httpx.post(f"{sandbox.url}{path}", json=body, headers=headers, timeout=10)


def test_an_invalid_admin_body_is_a_pydantic_422(sandbox):
    response = _admin(sandbox, "/key/generate", {"max_budget": "lots"})
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "max_budget"]
    assert detail["type"] == "float_parsing"
    assert _admin(sandbox, "/team/update", {}).json()["detail"][0]["loc"] == ["body", "team_id"]


def test_unknown_fields_are_dropped_like_litellm_does(sandbox):
    response = _admin(sandbox, "/key/generate", {"key_alias": sandbox.unique("key"), "max_budjet": 5})
    assert response.status_code == 200
    assert "max_budjet" not in response.json()
    assert response.json()["max_budget"] is None


def test_a_duplicate_alias_answers_litellms_400(sandbox):
    alias = sandbox.unique("key")
    assert _admin(sandbox, "/key/generate", {"key_alias": alias}).status_code == 200
    response = _admin(sandbox, "/key/generate", {"key_alias": alias})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": f"Key with alias '{alias}' already exists. Unique key aliases across all keys are required.",
            "type": "bad_request_error",
            "param": "key_alias",
            "code": "400",
        }
    }


def test_admin_routes_need_the_master_key(sandbox):
    key = new_key(sandbox)
    assert httpx.post(f"{sandbox.url}/key/generate", json={}, timeout=10).status_code == 401
    assert _admin(sandbox, "/key/generate", {}, secret=key["key"]).status_code == 401
    assert _admin(sandbox, "/sandbox/faults", {"clear": True}, secret=key["key"]).status_code == 401


def test_custom_secrets_must_look_like_litellm_keys(sandbox):
    assert _admin(sandbox, "/key/generate", {"key": "not-an-sk-key-0123456789"}).status_code == 400
    assert _admin(sandbox, "/key/generate", {"key": "sk-short"}).status_code == 400


def test_key_list_size_over_100_is_422(sandbox):
    response = httpx.get(
        f"{sandbox.url}/key/list", params={"size": 101}, headers={"Authorization": f"Bearer {sandbox.master_key}"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "size"]


def test_a_secret_the_gateway_already_holds_keeps_the_old_key_and_still_answers_200(sandbox):
    """LiteLLM upserts the key row with an empty update: nothing changes, the answer looks like success."""
    secret = f"sk-{sandbox.unique('secret')}"
    first = _admin(sandbox, "/key/generate", {"key": secret, "key_alias": sandbox.unique("first"), "max_budget": 1})
    second = _admin(sandbox, "/key/generate", {"key": secret, "key_alias": sandbox.unique("second"), "max_budget": 9})

    assert first.status_code == second.status_code == 200
    assert second.json()["token"] == first.json()["token"], "the answer names the same key"
    assert second.json()["key_alias"] != first.json()["key_alias"], "and echoes what was asked"
    assert second.json()["created_at"] == first.json()["created_at"], "with the old row's times"
    info = key_info(sandbox, first.json())
    assert (info["key_alias"], info["max_budget"]) == (first.json()["key_alias"], 1), "the old row is kept"


def _litellms_answer_to_a_custom_key_when_disabled() -> tuple[int, dict]:
    """What LiteLLM's own check raises, as its exception handler renders it."""
    import asyncio

    from litellm.proxy import proxy_server
    from litellm.proxy._types import ProxyErrorTypes, ProxyException
    from litellm.proxy.management_endpoints.key_management_endpoints import _check_custom_key_allowed
    from litellm.proxy.utils import openai_error_param

    saved = dict(proxy_server.general_settings)
    proxy_server.general_settings["disable_custom_api_keys"] = True
    try:
        asyncio.run(_check_custom_key_allowed("sk-0123456789abcdef"))
    except Exception as exc:  # an HTTPException, turned into the body as handle_exception_on_proxy does
        error = ProxyException(
            message=exc.detail,
            type=ProxyErrorTypes.internal_server_error,
            param=openai_error_param(exc),
            code=exc.status_code,
        ).to_dict()
        return exc.status_code, json.loads(json.dumps(error))
    finally:
        proxy_server.general_settings.clear()
        proxy_server.general_settings.update(saved)
    raise AssertionError("LiteLLM accepted a custom key with disable_custom_api_keys on")


def test_disable_custom_api_keys_refuses_a_callers_secret_with_litellms_403(sandbox, litellm):
    sandbox.gateway_settings(disable_custom_api_keys=True)
    refused = _admin(sandbox, "/key/generate", {"key": f"sk-{sandbox.unique('s')}", "key_alias": sandbox.unique("k")})
    made = _admin(sandbox, "/key/generate", {"key_alias": sandbox.unique("k")})

    status, error = _litellms_answer_to_a_custom_key_when_disabled()
    assert (refused.status_code, refused.json()) == (status, {"error": error}) == (403, {"error": error})
    assert made.status_code == 200, "keys the gateway makes itself are still allowed"


def test_key_generate_does_not_create_the_keys_user(sandbox):
    """generate_key_helper_fn(table_name="key") skips the user table; govsite creates the user first."""
    user_id = sandbox.unique("user")
    assert _admin(sandbox, "/key/generate", {"user_id": user_id}).status_code == 200
    with sqlite3.connect(sandbox.db_path) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE user_id = ?", (user_id,)).fetchone() == (0,)


def test_key_delete_echoes_what_it_was_given(sandbox):
    """delete_key_fn returns `data.keys` (or, without keys, `data.key_aliases`) as passed."""
    key = new_key(sandbox)
    missing = "0" * 64
    response = _admin(sandbox, "/key/delete", {"keys": [key["key"], missing], "key_aliases": ["ignored"]})

    assert response.json() == {"deleted_keys": [key["key"], missing]}, "even a key that was not there"
    assert key_info(sandbox, key)["status"] == "deleted"
    other = new_key(sandbox)
    by_alias = _admin(sandbox, "/key/delete", {"key_aliases": [other["key_alias"]]})
    assert by_alias.json() == {"deleted_keys": [other["key_alias"]]}
    none_left = _admin(sandbox, "/key/delete", {"keys": [missing]})
    assert none_left.status_code == 404
    assert error_of(none_left)["message"] == repr({"error": "No keys found"})


def test_spend_rows_are_written_in_batches_seconds_after_the_call(sandbox):
    key = new_key(sandbox)
    sandbox.gateway_settings(spend_log_batch_seconds=30)  # long enough that no batch goes out by chance
    statuses = [sandbox.chat(key["key"]).status_code for _ in range(3)]

    assert statuses == [200] * 3
    assert read_rows(sandbox, api_key=key["token"]) == [], "not readable the moment the call returns"
    sandbox.gateway_settings(spend_log_batch_seconds=0.3)
    rows = written_rows(sandbox, expect=3, api_key=key["token"])
    assert len(rows) == 3
    assert key_info(sandbox, key)["spend"] == pytest.approx(sum(r["spend"] for r in rows)), "budgets count at once"


def test_a_proxy_without_a_database_answers_like_litellm(sandbox):
    sandbox.gateway_settings(database=False)
    spend = spend_logs_get(sandbox, start_date="2001-01-01", end_date="2001-01-02")
    generate = _admin(sandbox, "/key/generate", {})

    assert (spend.status_code, error_of(spend)) == (
        401,
        {"message": "Prisma Client is not initialized", "type": "internal_error", "param": "None", "code": "401"},
    )
    assert generate.status_code == 500
    assert "DB not connected" in error_of(generate)["message"]
