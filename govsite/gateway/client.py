"""The one place that speaks LiteLLM's admin HTTP API.

Every request body is checked against litellm's own pydantic request model before it is sent, with
unknown field names refused (litellm's models silently drop extras, which would hide a typo such as
`max_budjet` until a key turned out to have no budget). Every failure surfaces as a `GatewayError`
subclass whose `retryable` flag tells the outbox whether trying again can help.

Secrets never travel further than they must: a key secret passed to update/block/delete/info is
hashed here (LiteLLM accepts the sha256 hash everywhere), and nothing in this module logs a body,
a query string or the master key.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx

logger = logging.getLogger(__name__)

# The request models litellm's proxy validates these bodies with (litellm.proxy._types).
REQUEST_MODELS = frozenset(
    {
        "GenerateKeyRequest",
        "UpdateKeyRequest",
        "KeyRequest",
        "BlockKeyRequest",
        "NewTeamRequest",
        "UpdateTeamRequest",
        "NewUserRequest",
    }
)
# Query filters each list endpoint understands; anything else is a typo that LiteLLM would ignore.
KEY_LIST_FILTERS = frozenset(
    {"user_id", "team_id", "key_alias", "key_hash", "organization_id", "status", "sort_by", "sort_order"}
)
SPEND_LOG_FILTERS = frozenset(
    {
        "api_key",
        "user_id",
        "team_id",
        "request_id",
        "model",
        "model_id",
        "model_group",
        "key_alias",
        "status_filter",
        "end_user",
        "session_id",
        "min_spend",
        "max_spend",
        "error_code",
        "sort_by",
        "sort_order",
    }
)
KEY_LIST_MAX_SIZE = 100
SPEND_LOGS_MAX_PAGE_SIZE = 1000
# LiteLLM accepts these without complaint at validation time but fails with a 500 when it parses them.
_DURATION_RE = re.compile(r"^\d+(mo|[smhdw])$")
_DURATION_WORDS = frozenset({"hourly", "daily", "weekly", "monthly"})
_DURATION_FIELDS = ("duration", "budget_duration")


class GatewayError(Exception):
    """A call to the gateway failed. `retryable` says whether the same call may succeed later."""

    retryable_default = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,  # LiteLLM's name for the field
        param: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code
        self.retryable = self.retryable_default if retryable is None else retryable

    def __str__(self) -> str:
        prefix = f"[{self.status}] " if self.status else ""
        return f"{prefix}{self.message}"


class NotFound(GatewayError):
    """The key, team or user does not exist on the gateway (404 / not_found_error)."""


class Conflict(GatewayError):
    """Something with that identity already exists (duplicate team_id, user_id, e-mail)."""


class AliasConflict(Conflict):
    """Another key already uses this key_alias (aliases are unique across every user)."""


class ValidationFailed(GatewayError):
    """The request was refused as malformed, by litellm's models here or by the gateway (422)."""


class EnterpriseOnly(GatewayError):
    """The feature needs a LiteLLM Enterprise licence the gateway does not have."""


class SecretAlreadyUsed(Conflict):
    """/key/generate was given a secret the gateway already holds. LiteLLM keeps the old key's row
    unchanged and still answers 200 with the request's fields, so only a look-up shows it made nothing."""


class GatewayMisconfigured(GatewayError):
    """The gateway's own configuration refuses what govsite needs; trying again cannot help until an
    admin of the gateway changes it. The message says what to change."""


class CustomKeysDisabled(GatewayMisconfigured):
    """general_settings.disable_custom_api_keys is on: LiteLLM answers 403 to a caller-provided secret,
    and govsite makes every key's secret itself."""


class NoDatabase(GatewayMisconfigured):
    """The proxy runs without a database (no DATABASE_URL): it has no keys, teams or spend logs to serve.
    Its /spend/logs/v2 answers 401, which is not a refused master key."""


class Unauthorized(GatewayError):
    """The master key was refused (401/403)."""


class RateLimited(GatewayError):
    """The gateway throttled us (429)."""

    retryable_default = True


class Unavailable(GatewayError):
    """The gateway could not be reached or failed on its side (timeouts, refused connections, 5xx)."""

    retryable_default = True


def hash_key(key: str) -> str:
    """sha256 hex of a secret, as LiteLLM stores it; a value that is not a secret is already a hash."""
    if key.startswith("sk-"):
        return hashlib.sha256(key.encode()).hexdigest()
    return key


def _request_model(model_name: str):
    if model_name not in REQUEST_MODELS:
        raise ValueError(f"{model_name} is not one of the request models the client uses")
    from litellm.proxy import _types  # imported late: litellm takes seconds to import

    return getattr(_types, model_name)


def validate_request(model_name: str, body: dict[str, Any]) -> None:
    """Check `body` against litellm's `model_name`, refusing fields the model does not have.

    Raises `ValidationFailed` naming the offending field in `param`.
    """
    import pydantic

    model = _request_model(model_name)
    known = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValidationFailed(
            f"{model_name} has no field {', '.join(repr(name) for name in unknown)}", param=unknown[0]
        )
    for name in _DURATION_FIELDS:
        value = body.get(name)
        if isinstance(value, str) and not (_DURATION_RE.match(value) or value.strip().lower() in _DURATION_WORDS):
            raise ValidationFailed(f"{name} must look like '30d', '24h', '30m' or '1mo', not {value!r}", param=name)
    try:
        model.model_validate(body)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(part) for part in first.get("loc", ()))
        raise ValidationFailed(
            f"{model_name}: {exc.error_count()} invalid field(s): {loc} {first['msg']}", param=loc or None
        ) from exc


def format_utc(moment: datetime) -> str:
    """'YYYY-MM-DD HH:MM:SS' in UTC, the one date format /spend/logs/v2 reads without surprises.

    A bare date is refused: LiteLLM reads an end_date of '2026-11-23' as that day's midnight, so the
    day itself would silently drop out of the window.
    """
    if not isinstance(moment, datetime):
        if isinstance(moment, date):
            raise ValidationFailed("spend logs need a datetime, not a bare date (the end day would be excluded)")
        raise ValidationFailed(f"expected a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationFailed("spend log windows need timezone-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _error_fields(payload: Any) -> tuple[str, str | None, str | None, str | None, bool]:
    """(message, type, param, code, is_validation_list) from any of LiteLLM's error shapes."""
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            param = error.get("param")
            return (
                str(error.get("message") or ""),
                error.get("type"),
                None if param in (None, "None") else str(param),
                None if error.get("code") is None else str(error.get("code")),
                False,
            )
        if isinstance(error, str):
            return error, None, None, None, False
        detail = payload.get("detail")
        if isinstance(detail, list):
            parts = []
            param = None
            for item in detail:
                if isinstance(item, dict):
                    loc = [str(p) for p in item.get("loc", ()) if p not in ("body", "query")]
                    param = param or (".".join(loc) or None)
                    parts.append(f"{'.'.join(loc)}: {item.get('msg', '')}")
                else:
                    parts.append(str(item))
            return "; ".join(parts), None, param, None, True
        if isinstance(detail, dict):
            inner = detail.get("error", detail.get("message", detail))
            return str(inner), None, None, None, False
        if detail is not None:
            return str(detail), None, None, None, False
    if isinstance(payload, str):
        return payload, None, None, None, False
    return "", None, None, None, False


# What a proxy without a database says, route by route (read from litellm.proxy and a DB-less proxy):
# /spend/logs/v2 a 401 "Prisma Client is not initialized", /key/list "Authentication Error, Database not
# connected", /key/generate CommonProxyErrors.db_not_connected_error, /key/delete "Not connected to DB!",
# and a key it cannot check "No connected db.".
_NO_DATABASE = (
    "prisma client is not initialized",
    "db not connected",
    "database not connected",
    "no db connected",
    "not connected to db",
    "no connected db",
)
NO_DATABASE_ADVICE = (
    "the gateway has no database: LiteLLM runs without DATABASE_URL, so it keeps no keys, teams or spend "
    "logs; give it a PostgreSQL database"
)
CUSTOM_KEYS_ADVICE = (
    "the gateway refuses keys govsite makes: turn off general_settings.disable_custom_api_keys in "
    "LiteLLM's config (govsite sets each key's secret itself)"
)


def error_from_response(status: int, payload: Any) -> GatewayError:
    """Map a LiteLLM error response to the typed error govsite acts on."""
    message, err_type, param, code, is_validation_list = _error_fields(payload)
    message = message or f"gateway answered HTTP {status}"
    fields = {"status": status, "type": err_type, "param": param, "code": code}
    lowered = message.lower()
    # Checked before the status: LiteLLM answers 400, 403 or even 500 for a missing licence.
    if "must be a litellm enterprise user" in lowered:
        return EnterpriseOnly(message, **fields)
    # Checked before 401/403: these are the gateway's configuration, not a refused master key.
    if any(marker in lowered for marker in _NO_DATABASE) or err_type == "no_db_connection":
        return NoDatabase(f"{NO_DATABASE_ADVICE} (LiteLLM said: {message})", **fields)
    if "custom api key values are disabled" in lowered:
        return CustomKeysDisabled(f"{CUSTOM_KEYS_ADVICE} (LiteLLM said: {message})", **fields)
    if status == 404 or err_type == "not_found_error":
        return NotFound(message, **fields)
    about_alias = param == "key_alias" or "key_alias" in lowered or "key alias" in lowered
    alias_taken = "already exists" in lowered or "unique key aliases" in lowered or "multiple keys share" in lowered
    if about_alias and alias_taken:
        return AliasConflict(message, **fields)
    if status == 409 or (status == 400 and "already exists" in lowered):
        return Conflict(message, **fields)
    if status == 422 or is_validation_list:
        return ValidationFailed(message, **fields)
    if status in (401, 403):
        return Unauthorized(message, **fields)
    if status == 429:
        return RateLimited(message, **fields)
    if status >= 500:
        return Unavailable(message, **fields)
    if status == 400 and param == "key_alias":
        return ValidationFailed(message, **fields)
    return GatewayError(message, **fields)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS context every client of this process shares. httpx builds one per client otherwise, reading
    the whole CA bundle each time: tens of milliseconds per gateway command, more than its HTTP calls."""
    return httpx.create_ssl_context()


class GatewayClient:
    """A LiteLLM admin API client authenticated with the master key. Methods return parsed JSON."""

    def __init__(
        self,
        base_url: str,
        master_key: str,
        timeout: float = 10.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {master_key}", "User-Agent": "govsite-gateway-client"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
            verify=_tls_context(),
        )

    def __repr__(self) -> str:
        return f"GatewayClient({self.base_url!r}, timeout={self.timeout})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- transport

    def _request(self, method: str, path: str, *, json: dict | None = None, params: dict | None = None) -> Any:
        started = time.monotonic()
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"{method} {path} timed out after {self.timeout}s") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"{method} {path} could not reach the gateway: {type(exc).__name__}") from exc
        # Path and status only: bodies and query strings can carry key hashes and user data.
        logger.debug(
            "gateway %s %s -> %s in %.0f ms", method, path, response.status_code, (time.monotonic() - started) * 1000
        )
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if response.is_success:
            return payload
        raise error_from_response(response.status_code, payload)

    def _post(self, path: str, model_name: str, body: dict[str, Any]) -> Any:
        validate_request(model_name, body)
        return self._request("POST", path, json=body)

    # --- keys

    def key_generate(self, **fields: Any) -> dict:
        """Create a virtual key. The response's `key` is the plaintext secret, returned only here.

        With a caller-provided `key`, LiteLLM answers 200 even when a key with that secret exists
        already: it keeps the old row untouched and echoes the request. The key is therefore looked up
        afterwards, and `SecretAlreadyUsed` raised when what the gateway holds is not what was asked.
        """
        response = self._post("/key/generate", "GenerateKeyRequest", fields)
        if isinstance(fields.get("key"), str):
            self._check_generated(fields, response)
        return response

    def _check_generated(self, fields: dict[str, Any], response: Any) -> None:
        token = hash_key(fields["key"])
        held = (self.key_info(key=token).get("info") or {}) if isinstance(response, dict) else {}
        differs = [
            name for name in ("key_alias", "user_id", "team_id") if name in fields and held.get(name) != fields[name]
        ]
        # LiteLLM may add its own entries to a key's metadata; the ones sent must be there as sent.
        held_metadata = held.get("metadata") if isinstance(held.get("metadata"), dict) else {}
        if isinstance(fields.get("metadata"), dict) and any(
            held_metadata.get(name) != value for name, value in fields["metadata"].items()
        ):
            differs.append("metadata")
        if differs:
            raise SecretAlreadyUsed(
                "the gateway already held a key with this secret and kept it unchanged; it did not make the "
                f"requested key (it differs in {', '.join(differs)})",
                status=200,
                param="key",
            )

    def key_update(self, **fields: Any) -> dict:
        """Merge-patch a key found by `key` (secret or hash) or `key_alias`; `metadata` replaces wholesale."""
        if isinstance(fields.get("key"), str):
            fields["key"] = hash_key(fields["key"])
        return self._post("/key/update", "UpdateKeyRequest", fields)

    def key_block(self, *, key: str) -> dict:
        return self._post("/key/block", "BlockKeyRequest", {"key": hash_key(key)})

    def key_unblock(self, *, key: str) -> dict:
        return self._post("/key/unblock", "BlockKeyRequest", {"key": hash_key(key)})

    def key_delete(self, *, keys: list[str] | None = None, key_aliases: list[str] | None = None) -> dict:
        body: dict[str, Any] = {}
        if keys is not None:
            body["keys"] = [hash_key(key) for key in keys]
        if key_aliases is not None:
            body["key_aliases"] = list(key_aliases)
        return self._post("/key/delete", "KeyRequest", body)

    def key_info(self, *, key: str) -> dict:
        """`{"key", "info": {...}}`; the key goes out hashed so no secret lands in an access log."""
        return self._request("GET", "/key/info", params={"key": hash_key(key)})

    def key_list(self, *, page: int = 1, size: int = KEY_LIST_MAX_SIZE, **filters: Any) -> dict:
        """One page of full key objects: `{"keys", "total_count", "current_page", "total_pages"}`."""
        unknown = sorted(set(filters) - KEY_LIST_FILTERS)
        if unknown:
            raise ValidationFailed(f"/key/list has no filter {', '.join(unknown)}", param=unknown[0])
        if not 1 <= size <= KEY_LIST_MAX_SIZE:
            raise ValidationFailed(f"size must be 1..{KEY_LIST_MAX_SIZE}", param="size")
        params = {"page": page, "size": size, "return_full_object": "true"}
        params.update({name: value for name, value in filters.items() if value is not None})
        return self._request("GET", "/key/list", params=params)

    def key_list_all(self, **filters: Any) -> list[dict]:
        """Every key matching `filters`, paging to the end."""
        keys: list[dict] = []
        page = 1
        while True:
            result = self.key_list(page=page, size=KEY_LIST_MAX_SIZE, **filters)
            batch = result.get("keys") or []
            keys.extend(batch)
            if not batch or page >= (result.get("total_pages") or 0):
                return keys
            page += 1

    # --- teams and users

    def team_new(self, **fields: Any) -> dict:
        return self._post("/team/new", "NewTeamRequest", fields)

    def team_update(self, **fields: Any) -> dict:
        return self._post("/team/update", "UpdateTeamRequest", fields)

    def team_info(self, *, team_id: str) -> dict:
        return self._request("GET", "/team/info", params={"team_id": team_id})

    def user_new(self, **fields: Any) -> dict:
        """Create a gateway user. LiteLLM would also mint a key for them unless told not to."""
        return self._post("/user/new", "NewUserRequest", {**fields, "auto_create_key": False})

    # --- spend

    def spend_logs_v2(
        self,
        *,
        start: datetime,
        end: datetime,
        page: int = 1,
        page_size: int = SPEND_LOGS_MAX_PAGE_SIZE,
        **filters: Any,
    ) -> dict:
        """One page of spend log rows with startTime in [start, end] (both inclusive, UTC).

        Returns `{"data", "total", "page", "page_size", "total_pages", "total_is_capped"}`. `total`
        stops at 10,000; use `spend_logs_v2_all` to read everything.
        """
        unknown = sorted(set(filters) - SPEND_LOG_FILTERS)
        if unknown:
            raise ValidationFailed(f"/spend/logs/v2 has no filter {', '.join(unknown)}", param=unknown[0])
        if not 1 <= page_size <= SPEND_LOGS_MAX_PAGE_SIZE:
            raise ValidationFailed(f"page_size must be 1..{SPEND_LOGS_MAX_PAGE_SIZE}", param="page_size")
        params: dict[str, Any] = {
            "start_date": format_utc(start),
            "end_date": format_utc(end),
            "page": page,
            "page_size": page_size,
        }
        params.update({name: value for name, value in filters.items() if value is not None})
        return self._request("GET", "/spend/logs/v2", params=params)

    def spend_logs_v2_all(
        self, *, start: datetime, end: datetime, page_size: int = SPEND_LOGS_MAX_PAGE_SIZE, **filters: Any
    ) -> Iterator[dict]:
        """Every row in the window, page by page until a page comes back empty.

        `total` and `total_pages` stop at 10,000 rows, so they cannot say when to stop. Offset paging
        over a window that is still filling can repeat a row; callers key rows by `request_id`.
        """
        page = 1
        while True:
            batch = self.spend_logs_v2(start=start, end=end, page=page, page_size=page_size, **filters)["data"]
            if not batch:
                return
            yield from batch
            page += 1

    # --- health

    def liveliness(self) -> Any:
        """GET /health/liveliness ("I'm alive!"); raises Unavailable when the gateway is down."""
        return self._request("GET", "/health/liveliness")


def get_client(*, timeout: float | None = None) -> GatewayClient:
    """A client for the configured gateway (LITELLM_URL, LITELLM_MASTER_KEY, GATEWAY_TIMEOUT_SECONDS)."""
    from django.conf import settings

    return GatewayClient(
        settings.LITELLM_URL,
        settings.LITELLM_MASTER_KEY,
        settings.GATEWAY_TIMEOUT_SECONDS if timeout is None else timeout,
    )
