"""What the client puts on the wire is what litellm's own request models accept, and nothing else.

The client runs over a recording httpx transport (no gateway, no mock of our code): each body it
sends is checked here against the litellm model directly, independently of the client's own check.
Also: LiteLLM's error shapes map to the right typed errors.
"""

import json
from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import pytest

from govsite.gateway.client import (
    AliasConflict,
    Conflict,
    CustomKeysDisabled,
    EnterpriseOnly,
    GatewayClient,
    GatewayError,
    NoDatabase,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    error_from_response,
    hash_key,
    validate_request,
)

SECRET = "sk-1234"
SECRET_HASH = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"  # from the reference


class Recorder:
    """An httpx transport that keeps every request and answers 200: {} to a POST, and to /key/info the
    key last generated (as a gateway that made it holds it: the client looks up a key it gave the secret of)."""

    def __init__(self):
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/key/info":
            made = [json.loads(r.content) for r in self.requests if r.url.path == "/key/generate"]
            return httpx.Response(200, json={"info": made[-1] if made else {}})
        return httpx.Response(200, json={})

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    @property
    def last_post(self) -> httpx.Request:
        return next(r for r in reversed(self.requests) if r.method == "POST")

    def last_body(self) -> dict:
        return json.loads(self.last_post.content)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture(scope="module")
def litellm_types():
    from litellm.proxy import _types  # litellm takes seconds to import; only tests that need it pay

    return _types


@pytest.fixture
def client(recorder):
    with GatewayClient("http://gateway.test", "sk-master", 5, transport=httpx.MockTransport(recorder)) as c:
        yield c


# Every body-carrying method, a realistic call, the path it posts to and litellm's model for the body.
CALLS = [
    (
        "key_generate",
        {
            "key_alias": "govsite-payments-ada-1",
            "key": "sk-custom-secret-0123456789",
            "user_id": "govsite-user-1",
            "team_id": "govsite-team-1",
            "models": ["gpt-4o", "claude-sonnet-4-5"],
            "max_budget": 50.0,
            "soft_budget": 40.0,
            "budget_duration": "1mo",
            "tpm_limit": 100000,
            "rpm_limit": 60,
            "max_parallel_requests": 4,
            "duration": "90d",
            "metadata": {"govsite_key_id": 1, "owner": "ada@example.com"},
            "blocked": False,
        },
        "/key/generate",
        "GenerateKeyRequest",
    ),
    ("key_update", {"key": SECRET, "max_budget": 75.0, "metadata": {"a": 1}}, "/key/update", "UpdateKeyRequest"),
    ("key_update", {"key_alias": "govsite-payments-ada-1", "rpm_limit": 10}, "/key/update", "UpdateKeyRequest"),
    ("key_block", {"key": SECRET}, "/key/block", "BlockKeyRequest"),
    ("key_unblock", {"key": SECRET_HASH}, "/key/unblock", "BlockKeyRequest"),
    ("key_delete", {"keys": [SECRET]}, "/key/delete", "KeyRequest"),
    ("key_delete", {"key_aliases": ["govsite-payments-ada-1"]}, "/key/delete", "KeyRequest"),
    (
        "team_new",
        {
            "team_id": "govsite-team-1",
            "team_alias": "Payments",
            "models": ["gpt-4o"],
            "max_budget": 500.0,
            "soft_budget": 400.0,
            "budget_duration": "30d",
            "tpm_limit": 1000,
            "rpm_limit": 100,
            "metadata": {"govsite_team": "payments"},
            "members_with_roles": [{"role": "user", "user_id": "govsite-user-1"}],
        },
        "/team/new",
        "NewTeamRequest",
    ),
    ("team_update", {"team_id": "govsite-team-1", "max_budget": 600.0}, "/team/update", "UpdateTeamRequest"),
    (
        "user_new",
        {
            "user_id": "govsite-user-1",
            "user_email": "ada@example.com",
            "user_role": "internal_user",
            "max_budget": 10.0,
        },
        "/user/new",
        "NewUserRequest",
    ),
]


@pytest.mark.parametrize(("method", "fields", "path", "model_name"), CALLS, ids=[c[0] for c in CALLS])
def test_every_body_the_client_sends_validates_against_litellm(
    client, recorder, litellm_types, method, fields, path, model_name
):
    getattr(client, method)(**fields)

    body = recorder.last_body()
    model = getattr(litellm_types, model_name)
    assert recorder.last_post.url.path == path
    assert set(body) <= set(model.model_fields), f"fields litellm would drop: {set(body) - set(model.model_fields)}"
    model.model_validate(body)
    assert recorder.last_post.headers["Authorization"] == "Bearer sk-master"


def test_existing_keys_go_out_hashed(client, recorder):
    client.key_update(key=SECRET, max_budget=1.0)
    assert recorder.last_body()["key"] == SECRET_HASH
    client.key_block(key=SECRET)
    assert recorder.last_body() == {"key": SECRET_HASH}
    client.key_delete(keys=[SECRET, SECRET_HASH])
    assert recorder.last_body() == {"keys": [SECRET_HASH, SECRET_HASH]}
    client.key_info(key=SECRET)
    assert recorder.last.url.params["key"] == SECRET_HASH
    assert SECRET not in str(recorder.last.url)
    assert hash_key(SECRET) == SECRET_HASH


def test_a_new_key_keeps_its_custom_secret(client, recorder):
    client.key_generate(key_alias="a", key="sk-custom-secret-0123456789")
    assert recorder.last_body()["key"] == "sk-custom-secret-0123456789"


def test_user_new_always_asks_for_no_key(client, recorder):
    client.user_new(user_id="u1")
    assert recorder.last_body()["auto_create_key"] is False
    client.user_new(user_id="u2", auto_create_key=True)
    assert recorder.last_body()["auto_create_key"] is False


def test_key_list_always_asks_for_full_objects(client, recorder):
    client.key_list(user_id="u1", team_id="t1", key_alias="a")
    params = recorder.last.url.params
    assert params["return_full_object"] == "true"
    assert (params["page"], params["size"], params["user_id"], params["team_id"]) == ("1", "100", "u1", "t1")


def test_spend_log_windows_go_out_as_utc_datetimes(client, recorder):
    start = datetime(2026, 11, 23, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    end = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    client.spend_logs_v2(start=start, end=end, api_key=SECRET_HASH, page=3, page_size=500)

    params = recorder.last.url.params
    assert params["start_date"] == "2026-11-23 07:30:00"
    assert params["end_date"] == "2026-11-24 00:00:00"
    assert (params["page"], params["page_size"], params["api_key"]) == ("3", "500", SECRET_HASH)


@pytest.mark.parametrize("bad", [date(2026, 11, 23), datetime(2026, 11, 23, 12, 0), "2026-11-23"])  # noqa: DTZ001
def test_spend_log_windows_refuse_dates_and_naive_datetimes(client, recorder, bad):
    with pytest.raises(ValidationFailed):
        client.spend_logs_v2(start=datetime(2026, 11, 22, tzinfo=UTC), end=bad)
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("method", "fields", "param"),
    [
        ("key_generate", {"key_alias": "a", "max_budjet": 5}, "max_budjet"),
        ("key_generate", {"key_alias": "a", "team": "t1"}, "team"),
        ("key_update", {"key": SECRET, "budget": 5}, "budget"),
        ("team_new", {"team_id": "t", "alias": "Payments"}, "alias"),
        ("team_update", {"team_id": "t", "maxbudget": 1}, "maxbudget"),
        ("user_new", {"user_id": "u", "email": "a@example.com"}, "email"),
        ("key_generate", {"key_alias": "a", "max_budget": "lots"}, "max_budget"),
        ("key_generate", {"key_alias": "a", "duration": "90 days"}, "duration"),
        ("key_generate", {"key_alias": "a", "budget_duration": "monthly-ish"}, "budget_duration"),
        ("team_update", {"max_budget": 5.0}, "team_id"),
    ],
)
def test_a_wrong_field_is_refused_before_anything_is_sent(client, recorder, method, fields, param):
    with pytest.raises(ValidationFailed) as caught:
        getattr(client, method)(**fields)
    assert caught.value.param == param
    assert caught.value.retryable is False
    assert recorder.requests == []


def test_unknown_list_filters_are_refused(client, recorder):
    with pytest.raises(ValidationFailed):
        client.key_list(owner="ada")
    with pytest.raises(ValidationFailed):
        client.spend_logs_v2(start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 2, tzinfo=UTC), apikey="x")
    assert recorder.requests == []


def test_validate_request_directly():
    validate_request("GenerateKeyRequest", {"key_alias": "a", "models": [], "metadata": {}})
    validate_request("KeyRequest", {"key_aliases": ["a"]})
    with pytest.raises(ValidationFailed, match="max_budjet"):
        validate_request("GenerateKeyRequest", {"max_budjet": 5})
    with pytest.raises(ValidationFailed):
        validate_request("KeyRequest", {})  # litellm's own validator: keys or key_aliases
    with pytest.raises(ValueError, match="not one of"):
        validate_request("RegenerateKeyRequest", {})


# --- LiteLLM's error shapes -> typed errors -------------------------------------------------------


def _error(message, type_, param=None, code="400"):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@pytest.mark.parametrize(
    ("status", "payload", "expected", "retryable"),
    [
        (404, _error("Key not found.", "not_found_error", "key", "404"), NotFound, False),
        (404, _error("{'error': 'No keys found'}", "internal_server_error", None, "404"), NotFound, False),
        (
            404,
            _error("{'message': 'Team not found, passed team id: t.'}", "auth_error", "None", "404"),
            NotFound,
            False,
        ),
        (
            400,
            _error(
                "Key with alias 'a' already exists. Unique key aliases across all keys are required.",
                "bad_request_error",
                "key_alias",
            ),
            AliasConflict,
            False,
        ),
        (400, _error("Invalid key_alias", "bad_request_error", "key_alias"), ValidationFailed, False),
        (
            400,
            _error("{'error': 'Team id = t already exists. Please use a different team id.'}", "internal_server_error"),
            Conflict,
            False,
        ),
        (
            409,
            _error("{'error': 'User with id u already exists'}", "internal_server_error", None, "409"),
            Conflict,
            False,
        ),
        (
            422,
            {"detail": [{"type": "missing", "loc": ["body", "team_id"], "msg": "Field required"}]},
            ValidationFailed,
            False,
        ),
        (
            403,
            _error("You must be a LiteLLM Enterprise user to use this feature.", "auth_error", None, "403"),
            EnterpriseOnly,
            False,
        ),
        (
            500,
            _error(
                "Only premium users can add tags to keys. You must be a LiteLLM Enterprise user to use this feature.",
                "internal_server_error",
                None,
                "500",
            ),
            EnterpriseOnly,
            False,
        ),
        (
            401,
            _error("Authentication Error, Invalid proxy server token passed.", "auth_error", "None", "401"),
            Unauthorized,
            False,
        ),
        (
            500,
            _error(
                "DB not connected. See https://docs.litellm.ai/docs/proxy/virtual_keys",
                "internal_server_error",
                None,
                "500",
            ),
            NoDatabase,
            False,
        ),
        (400, {"detail": {"error": "Database not connected"}}, NoDatabase, False),
        (401, _error("Prisma Client is not initialized", "internal_error", "None", "401"), NoDatabase, False),
        (400, _error("No connected db.", "no_db_connection", None, "400"), NoDatabase, False),
        (
            403,
            _error(
                "{'error': 'Custom API key values are disabled by your administrator. Keys must be auto-generated.'}",
                "internal_server_error",
                None,
                "403",
            ),
            CustomKeysDisabled,
            False,
        ),
        (503, "Service Unavailable", Unavailable, True),
        (429, _error("Rate limit exceeded", "throttling_error", None, "429"), RateLimited, True),
        (400, {"detail": {"error": "Budget not found"}}, GatewayError, False),
    ],
)
def test_error_shapes_map_to_typed_errors(status, payload, expected, retryable):
    error = error_from_response(status, payload)
    assert type(error) is expected
    assert error.retryable is retryable
    assert error.status == status
    assert error.message


def test_error_fields_are_carried():
    error = error_from_response(404, _error("Key not found.", "not_found_error", "key", "404"))
    assert (error.message, error.type, error.param, error.code) == ("Key not found.", "not_found_error", "key", "404")
    detail = error_from_response(
        422, {"detail": [{"type": "float_parsing", "loc": ["body", "max_budget"], "msg": "x"}]}
    )
    assert detail.param == "max_budget"


def test_errors_never_carry_the_master_key():
    with GatewayClient("http://127.0.0.1:1", "sk-master-secret-value", 1) as client:
        with pytest.raises(Unavailable) as caught:
            client.key_list()
        assert "sk-master-secret-value" not in repr(client)
    assert "sk-master-secret-value" not in str(caught.value)
