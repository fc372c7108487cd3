"""The sandbox process: an HTTP server over one SQLite file, its routing, the test-only fault switch,
and `serve` / `main`."""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from govsite.devtools.sandbox.chat import ChatCompletions, auth_error, bearer, unknown_key
from govsite.devtools.sandbox.keys import (
    key_block,
    key_delete,
    key_generate,
    key_info,
    key_list,
    key_row,
    key_unblock,
    key_update,
)
from govsite.devtools.sandbox.spend_logs import SpendLogWriter, spend_logs_v2
from govsite.devtools.sandbox.store import (
    SPEND_LOG_BATCH_SECONDS,
    GatewaySettings,
    connect,
    hash_if_needed,
    init_db,
    load_litellm,
    load_request_models,
)
from govsite.devtools.sandbox.teams import team_info, team_new, team_update, user_new
from govsite.devtools.sandbox.validation import ApiError, Request, proxy_error, validation_error

logger = logging.getLogger("govsite.devtools.sandbox")


class SandboxServer(ThreadingHTTPServer):
    """The sandbox process: an HTTP server over one SQLite file, plus the test-only fault switch."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # concurrency tests open many connections at once

    def __init__(
        self,
        address: tuple[str, int],
        *,
        db_path: str | Path,
        master_key: str,
        settings: GatewaySettings | None = None,
        spend_log_batch_seconds: float = SPEND_LOG_BATCH_SECONDS,
    ) -> None:
        init_db(db_path)
        self.db_path = str(db_path)
        self.master_key = master_key
        self.settings = settings or GatewaySettings()
        self.spend_log_writer = SpendLogWriter(db_path, interval=spend_log_batch_seconds)
        self.spend_log_writer.start()
        self._faults_lock = threading.Lock()
        self._fail_next = 0
        self._fail_status = 500
        self._fail_message = "Sandbox fault injected"
        self._delay_next = 0
        self._delay_seconds = 0.0
        super().__init__(address, Handler)

    def set_faults(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self._faults_lock:
            if spec.get("clear"):
                self._fail_next = self._delay_next = 0
            if "fail_next" in spec:
                self._fail_next = int(spec["fail_next"])
                self._fail_status = int(spec.get("status", 500))
                self._fail_message = str(spec.get("message", "Sandbox fault injected"))
            if "delay_next" in spec:
                self._delay_next = int(spec["delay_next"])
                self._delay_seconds = float(spec.get("seconds", 1.0))
            return {
                "fail_next": self._fail_next,
                "status": self._fail_status,
                "delay_next": self._delay_next,
                "seconds": self._delay_seconds,
            }

    def take_fault(self) -> tuple[float, ApiError | None]:
        """(seconds to wait, error to answer) for the next admin call, consuming one of each."""
        with self._faults_lock:
            delay = 0.0
            if self._delay_next > 0:
                self._delay_next -= 1
                delay = self._delay_seconds
            error = None
            if self._fail_next > 0:
                self._fail_next -= 1
                error = proxy_error(self._fail_status, self._fail_message, "internal_server_error")
            return delay, error

    def server_close(self) -> None:
        self.spend_log_writer.stop()
        super().server_close()


AdminRoute = Callable[[Request], Any]
ADMIN_ROUTES: dict[tuple[str, str], AdminRoute] = {
    ("POST", "/key/generate"): key_generate,
    ("POST", "/key/update"): key_update,
    ("POST", "/key/delete"): key_delete,
    ("POST", "/key/block"): key_block,
    ("POST", "/key/unblock"): key_unblock,
    ("GET", "/key/info"): key_info,
    ("GET", "/key/list"): key_list,
    ("POST", "/team/new"): team_new,
    ("POST", "/team/update"): team_update,
    ("GET", "/team/info"): team_info,
    ("POST", "/user/new"): user_new,
    ("GET", "/spend/logs/v2"): spend_logs_v2,
}
CHAT_PATHS = {"/chat/completions", "/v1/chat/completions"}


class Handler(ChatCompletions, BaseHTTPRequestHandler):
    """Routes one HTTP request; each request gets its own SQLite connection."""

    server: SandboxServer
    protocol_version = "HTTP/1.1"
    server_version = "govsite-sandbox-gateway"
    # A response goes out as two writes (the headers, then the body) on a kept-alive connection: with
    # Nagle's algorithm the body waits for the client's delayed ACK of the headers, 40 ms on Linux, a
    # latency LiteLLM's own server does not have (asyncio, under uvicorn, sets TCP_NODELAY on every connection).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # --- plumbing

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise validation_error(
                [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "input": {}}]
            ) from exc

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        conn = connect(self.server.db_path)
        try:
            try:
                body = self._read_body() if method == "POST" else {}
                req = Request(
                    conn,
                    method,
                    path,
                    query,
                    self.headers,
                    body,
                    self.client_address[0],
                    settings=self.server.settings,
                    spend_log_writer=self.server.spend_log_writer,
                )
                self._route(req)
            except ApiError as error:
                self._send_json(error.status, error.payload, error.headers)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception as exc:
                # A sandbox bug or a locked database: answer as LiteLLM's own catch-all does (a 500 the
                # client treats as retryable) and keep the traceback in the log.
                logger.exception("sandbox failed on %s %s", method, path)
                error = proxy_error(500, f"Sandbox gateway error: {type(exc).__name__}", "internal_server_error")
                self._send_json(error.status, error.payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test, usually); nobody is left to answer.
            logger.debug("client went away during %s %s", method, path)
        finally:
            conn.close()

    def _route(self, req: Request) -> None:
        if req.method == "GET" and req.path in ("/health/liveliness", "/health/liveness"):
            self._send_json(200, "I'm alive!")
            return
        if req.method == "POST" and req.path in CHAT_PATHS:
            self._chat(req)
            return
        if (req.method, req.path) == ("POST", "/sandbox/faults"):
            self._require_master_key(req)
            self._send_json(200, self.server.set_faults(req.body if isinstance(req.body, dict) else {}))
            return
        if (req.method, req.path) == ("POST", "/sandbox/settings"):
            self._require_master_key(req)
            spec = req.body if isinstance(req.body, dict) else {}
            answer = self.server.settings.update(spec)
            if "spend_log_batch_seconds" in spec:
                self.server.spend_log_writer.set_interval(float(spec["spend_log_batch_seconds"]))
            self._send_json(200, {**answer, "spend_log_batch_seconds": self.server.spend_log_writer.interval})
            return
        if (req.method, req.path) == ("POST", "/sandbox/spend-logs/flush"):
            self._require_master_key(req)
            self._send_json(200, {"written": self.server.spend_log_writer.flush()})
            return
        route = ADMIN_ROUTES.get((req.method, req.path))
        if route is None:
            self._send_json(404, {"detail": "Not Found"})
            return
        self._require_master_key(req)
        delay, error = self.server.take_fault()
        if delay:
            time.sleep(delay)
        if error is not None:
            raise error
        self._send_json(200, route(req))

    def _require_master_key(self, req: Request) -> None:
        secret = bearer(req.headers)
        if not secret:
            raise auth_error("No api key passed in.")
        if hmac.compare_digest(secret.encode(), self.server.master_key.encode()):
            return
        if key_row(req.conn, hash_if_needed(secret)) is None:
            raise unknown_key(secret)
        raise auth_error(
            "Only proxy admin can be used to generate, delete, update info for new keys/users/teams. "
            f"Route={req.path}. Your role=internal_user."
        )


def serve(
    *,
    host: str,
    port: int,
    db_path: str | Path,
    master_key: str,
    settings: GatewaySettings | None = None,
    spend_log_batch_seconds: float = SPEND_LOG_BATCH_SECONDS,
) -> None:
    """Run the sandbox gateway until interrupted."""
    load_litellm()  # pay the import once, before the first request rather than during it
    load_request_models()
    server = SandboxServer(
        (host, port),
        db_path=db_path,
        master_key=master_key,
        settings=settings,
        spend_log_batch_seconds=spend_log_batch_seconds,
    )
    logger.info("sandbox gateway on http://%s:%s (db %s)", host, port, db_path)
    print(f"sandbox gateway listening on http://{host}:{server.server_address[1]}", flush=True)  # noqa: T201
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("sandbox gateway stopping")
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the govsite sandbox gateway (a stand-in LiteLLM proxy).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4000)
    parser.add_argument("--db", default="var/sandbox-gateway.sqlite3", help="SQLite file for the sandbox's state")
    parser.add_argument("--master-key", default="sk-sandbox-master-key")
    parser.add_argument(
        "--spend-log-batch-seconds",
        type=float,
        default=SPEND_LOG_BATCH_SECONDS,
        help="how long a call's spend-log row waits before its batch is written (LiteLLM: 10-15 s)",
    )
    parser.add_argument(
        "--disable-custom-api-keys",
        action="store_true",
        help="refuse caller-provided key secrets with 403, as general_settings.disable_custom_api_keys does",
    )
    parser.add_argument(
        "--no-database", action="store_true", help="answer as a proxy started without DATABASE_URL does"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    serve(
        host=args.host,
        port=args.port,
        db_path=args.db,
        master_key=args.master_key,
        settings=GatewaySettings(disable_custom_api_keys=args.disable_custom_api_keys, database=not args.no_database),
        spend_log_batch_seconds=args.spend_log_batch_seconds,
    )
