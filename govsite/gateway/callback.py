"""govsite's LiteLLM callback: pushes each request's spend to govsite as it happens.

Loaded by the LiteLLM proxy, not by Django — so it imports only the standard library, litellm and
httpx. In the proxy's config:

    litellm_settings:
      callbacks: ["govsite_callback.proxy_handler_instance"]

with this file mounted beside the config as govsite_callback.py, and in the proxy's environment
GOVSITE_INGEST_URL (e.g. http://web:8000/api/ingest/spend) and GOVSITE_INGEST_TOKEN (from
`manage.py create_ingest_token`). Without them the callback does nothing.

What it does:
- `async_pre_call_hook`: a streamed chat request gets `stream_options.include_usage = true`, so the
  provider reports the tokens it streamed (otherwise many providers report none and the call is
  logged at $0).
- `async_log_success_event` / `async_log_failure_event`: POST the request's standard logging
  payload to govsite. Message and response contents are left out: the ledger needs none of them,
  and a long conversation would exceed the endpoint's 1 MB limit. A push that fails is logged
  and dropped — govsite's pull of /spend/logs/v2 books the same request (by its id) anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import httpx
from litellm.integrations.custom_logger import CustomLogger

logger = logging.getLogger("govsite.callback")

# Contents of the conversation: never sent to govsite.
EXCLUDED_FIELDS = ("messages", "response")
RETRY_DELAYS = (0.5, 2.0)
TIMEOUT_SECONDS = 5.0
STREAMED_CALL_TYPES = {"completion", "acompletion", "text_completion", "atext_completion"}


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def ingest_body(standard_logging_object: dict) -> bytes:
    """The JSON posted to govsite: the logging payload without message or response contents."""
    payload = {k: v for k, v in standard_logging_object.items() if k not in EXCLUDED_FIELDS}
    metadata = payload.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("requester_metadata"), dict):
        # Keep the caller's user agent (it names the coding tool), drop the rest of the request's headers.
        requester = dict(metadata["requester_metadata"])
        headers = requester.get("headers") if isinstance(requester.get("headers"), dict) else {}
        requester["headers"] = {k: v for k, v in headers.items() if k.lower() == "user-agent"}
        payload["metadata"] = {**metadata, "requester_metadata": requester}
    return json.dumps(payload, default=_json_default, separators=(",", ":")).encode()


class GovsiteSpendCallback(CustomLogger):
    """Sends every request's spend to govsite's /api/ingest/spend."""

    def __init__(self, url: str | None = None, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._url = url
        self._token = token
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return self._url if self._url is not None else os.environ.get("GOVSITE_INGEST_URL", "")

    @property
    def token(self) -> str:
        return self._token if self._token is not None else os.environ.get("GOVSITE_INGEST_TOKEN", "")

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop or self._http.is_closed:
            self._http = httpx.AsyncClient(timeout=TIMEOUT_SECONDS)
            self._loop = loop
        return self._http

    # --- before the call

    async def async_pre_call_hook(self, user_api_key_dict, cache, data: dict, call_type: str):
        if data.get("stream") is True and call_type in STREAMED_CALL_TYPES:
            options = data.get("stream_options")
            data["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return data

    # --- after the call

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time) -> None:
        await self.push(kwargs.get("standard_logging_object"))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time) -> None:
        await self.push(kwargs.get("standard_logging_object"))

    async def push(self, standard_logging_object: dict | None) -> bool:
        """POST one payload; retried on network errors and 5xx. Returns whether govsite took it."""
        if not isinstance(standard_logging_object, dict):
            return False
        if not self.url or not self.token:
            logger.debug("GOVSITE_INGEST_URL or GOVSITE_INGEST_TOKEN unset: spend not pushed")
            return False
        body = ingest_body(standard_logging_object)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        request_id = standard_logging_object.get("id")
        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                response = await self._client().post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return True
                problem = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # refused for good (bad token, invalid row): retrying cannot help
            if attempt < len(RETRY_DELAYS):
                await asyncio.sleep(RETRY_DELAYS[attempt])
        logger.warning("govsite did not take spend of request %s: %s (the pull will book it)", request_id, problem)
        return False


proxy_handler_instance = GovsiteSpendCallback()
