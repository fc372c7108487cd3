"""Errors in LiteLLM's JSON shapes, and the request context that validates bodies with litellm's own models."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from govsite.devtools.sandbox.store import GatewaySettings, load_request_models, utcnow

# --- errors in LiteLLM's shapes


class ApiError(Exception):
    """An HTTP answer other than 200, carrying LiteLLM's JSON body for it."""

    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload
        self.headers = headers or {}


def proxy_error(status: int, message: str, type_: str, param: str | None = None, **kwargs: Any) -> ApiError:
    """LiteLLM's ProxyException: `{"error": {"message", "type", "param", "code": "<status>"}}`."""
    return ApiError(
        status, {"error": {"message": message, "type": type_, "param": param, "code": str(status)}}, **kwargs
    )


def detail_error(status: int, detail: Any, type_: str = "internal_server_error") -> ApiError:
    """An HTTPException re-raised by `handle_exception_on_proxy`: the detail arrives as its Python repr."""
    return proxy_error(status, detail if isinstance(detail, str) else repr(detail), type_)


def validation_error(errors: list[dict[str, Any]]) -> ApiError:
    """FastAPI's 422 for a request that fails pydantic validation."""
    return ApiError(422, {"detail": json.loads(json.dumps(errors, default=str))})


def query_error(name: str, error_type: str, msg: str, value: Any, ctx: dict | None = None) -> ApiError:
    item = {"type": error_type, "loc": ["query", name], "msg": msg, "input": value}
    if ctx:
        item["ctx"] = ctx
    return validation_error([item])


# --- request context


@dataclass
class Request:
    """What a route handler needs: one connection for this request, the parsed input, the time."""

    conn: sqlite3.Connection
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: Any
    client_ip: str
    now: datetime = field(default_factory=utcnow)
    settings: GatewaySettings = field(default_factory=GatewaySettings)
    spend_log_writer: Any = None  # spend_logs.SpendLogWriter: where this request's spend-log rows queue

    def validated(self, model_name: str) -> dict[str, Any]:
        """The body through litellm's request model: set fields only, unknown ones dropped like LiteLLM."""
        import pydantic  # litellm's dependency: imported late like litellm itself (see store.load_litellm)

        if not isinstance(self.body, dict):
            raise validation_error(
                [
                    {
                        "type": "model_attributes_type",
                        "loc": ["body"],
                        "msg": "Input should be a valid dictionary",
                        "input": self.body,
                    }
                ]
            )
        model = getattr(load_request_models(), model_name)
        try:
            parsed = model.model_validate(self.body)
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_url=False)
            for error in errors:
                error["loc"] = ["body", *error.get("loc", ())]
            raise validation_error(errors) from exc
        return parsed.model_dump(mode="json", exclude_unset=True)

    def int_param(self, name: str, default: int, *, ge: int = 1, le: int | None = None) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise query_error(
                name, "int_parsing", "Input should be a valid integer, unable to parse string as an integer", raw
            ) from exc
        if value < ge:
            raise query_error(
                name, "greater_than_equal", f"Input should be greater than or equal to {ge}", raw, {"ge": ge}
            )
        if le is not None and value > le:
            raise query_error(name, "less_than_equal", f"Input should be less than or equal to {le}", raw, {"le": le})
        return value
