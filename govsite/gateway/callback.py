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
  and a long conversation would exceed the endpoint's 1 MB limit.
- A payload govsite could not take (unreachable, 5xx, 429) is written to a spool directory
  (GOVSITE_SPOOL_DIR, default <tmp>/govsite-spool; mount a volume there to keep it across
  container restarts) and re-sent, oldest first, by a background thread with back-off (1 s doubling
  to GOVSITE_SPOOL_MAX_DELAY, 60 s), in this process or the next one after a restart. A payload
  govsite refuses for good (4xx) is not spooled: it is quarantined there. Every POST carries the
  spool's size and age in the `X-Govsite-Spool` header (`<files> <oldest epoch seconds>`), which
  govsite shows on its reconciliation page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from litellm.integrations.custom_logger import CustomLogger

logger = logging.getLogger("govsite.callback")

# Contents of the conversation: never sent to govsite.
EXCLUDED_FIELDS = ("messages", "response")
RETRY_DELAYS = (0.5, 2.0)
TIMEOUT_SECONDS = 5.0
STREAMED_CALL_TYPES = {"completion", "acompletion", "text_completion", "atext_completion"}
SPOOL_HEADER = "X-Govsite-Spool"
CLAIMED = ".sending"
STALE_CLAIM_NS = 120 * 1_000_000_000  # far longer than one POST may take (TIMEOUT_SECONDS)


class Spool:
    """Payloads waiting for govsite, one file each, named so that sorting them is oldest first."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def put(self, body: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}.json"
        partial = self.directory / f".{name}.partial"
        partial.write_bytes(body)
        final = self.directory / name
        os.replace(partial, final)  # atomic: a reader never sees half a payload
        return final

    def waiting(self) -> list[Path]:
        try:
            names = list(self.directory.iterdir())
        except FileNotFoundError:
            return []
        for path in names:  # claimed by a process that stopped while sending: waiting again
            if path.name.endswith(CLAIMED) and time.time_ns() - int(path.name.split(".")[-2]) > STALE_CLAIM_NS:
                with contextlib.suppress(FileNotFoundError):
                    self.release(path)
        return sorted(path for path in self.directory.iterdir() if path.name.endswith(".json"))

    def claim(self, path: Path) -> Path | None:
        """Take a file for sending; None when another worker (or process) took it first."""
        claimed = path.with_name(f"{path.name}.{time.time_ns()}{CLAIMED}")
        try:
            os.replace(path, claimed)
        except FileNotFoundError:
            return None
        return claimed

    def release(self, claimed: Path) -> None:
        os.replace(claimed, claimed.with_name(claimed.name.rsplit(".", 2)[0]))

    def report(self) -> str:
        """`<files> <oldest epoch seconds>` (0 0 when empty)."""
        waiting = self.waiting()
        if not waiting:
            return "0 0"
        oldest = int(waiting[0].name.split("-", 1)[0]) // 1_000_000_000
        return f"{len(waiting)} {oldest}"


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

    def __init__(
        self, url: str | None = None, token: str | None = None, spool_dir: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._url = url
        self._token = token
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.spool = Spool(
            spool_dir or os.environ.get("GOVSITE_SPOOL_DIR") or Path(tempfile.gettempdir()) / "govsite-spool"
        )
        self._drainer: threading.Thread | None = None
        self._drainer_lock = threading.Lock()
        if self.url and self.token:
            self.start_drainer()  # payloads a previous process spooled go out without waiting for traffic

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
        request_id = standard_logging_object.get("id")
        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                response = await self._client().post(self.url, content=body, headers=self._headers())
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return True
                problem = f"HTTP {response.status_code}: {response.text[:300]}"
                if _refused_for_good(response.status_code):
                    logger.warning("govsite refused spend of request %s: %s", request_id, problem)
                    return False
            if attempt < len(RETRY_DELAYS):
                await asyncio.sleep(RETRY_DELAYS[attempt])
        self.spool.put(body)
        logger.warning("govsite did not take spend of request %s: %s (spooled, sent again later)", request_id, problem)
        self.start_drainer()
        return False

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            SPOOL_HEADER: self.spool.report(),
        }

    # --- the spool, sent again from a thread (it outlives no request and needs no event loop)

    def start_drainer(self) -> None:
        with self._drainer_lock:
            if self._drainer is None or not self._drainer.is_alive():
                self._drainer = threading.Thread(target=self._drain_forever, name="govsite-spool", daemon=True)
                self._drainer.start()

    def _drain_forever(self) -> None:
        delay = 1.0
        longest = float(os.environ.get("GOVSITE_SPOOL_MAX_DELAY", "60"))
        with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
            while True:
                delivered_all = self.drain_once(client)
                delay = 1.0 if delivered_all else min(delay * 2, longest)
                time.sleep(delay)

    def drain_once(self, client: httpx.Client) -> bool:
        """Send what the spool holds, oldest first; stop at the first failure. Whether it is empty."""
        if not self.url or not self.token:
            return True
        for path in self.spool.waiting():
            claimed = self.spool.claim(path)
            if claimed is None:
                continue
            try:
                response = client.post(self.url, content=claimed.read_bytes(), headers=self._headers())
            except httpx.HTTPError as exc:
                self.spool.release(claimed)
                logger.info("govsite still unreachable (%s); %s payloads spooled", exc, self.spool.report())
                return False
            if response.is_success or _refused_for_good(response.status_code):
                if not response.is_success:
                    logger.warning("govsite refused a spooled payload: HTTP %s", response.status_code)
                claimed.unlink(missing_ok=True)
                continue
            self.spool.release(claimed)
            return False
        return True


def _refused_for_good(status: int) -> bool:
    # A bad token or an invalid row: sending again cannot help (govsite quarantines the row).
    return 400 <= status < 500 and status not in (408, 429)


proxy_handler_instance = GovsiteSpendCallback()
