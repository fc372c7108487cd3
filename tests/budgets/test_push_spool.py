"""The push path keeps what it cannot deliver: with govsite down, the real LiteLLM proxy's callback
spools each payload; restarted, the proxy still holds them; when govsite is back every payload arrives
once, and the reconciliation page shows what the callback reported of its spool."""

import contextlib
import socket
import threading

import httpx
import pytest

from budgets import services
from budgets.models import IngestToken, SpendRecord
from tests.gateway_fixtures import free_port
from tests.litellm_proxy import callback_env, start_real_proxy
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
MASTER = "sk-proxy-spool-master-key"


class Forwarder:
    """govsite 'coming back': a TCP relay from the port the proxy posts to, to the live server."""

    def __init__(self, port: int, target: tuple[str, int]):
        self.server = socket.create_server(("127.0.0.1", port))
        self.target = target
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        with contextlib.suppress(OSError):  # either side closing ends the relay
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.server.close()


def _call(url: str):
    response = httpx.post(
        f"{url}/chat/completions",
        headers={"Authorization": f"Bearer {MASTER}"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.headers.get("x-litellm-call-id")


def test_payloads_spooled_while_govsite_is_down_survive_a_proxy_restart_and_arrive_once(
    tmp_path, live_server, admin_user, admin_client
):
    _token, secret = services.ingest_token_create(actor=admin_user, name="spooling proxy")
    config = (
        "model_list:\n"
        "  - model_name: gpt-4o\n"
        "    litellm_params: {model: openai/gpt-4o, api_key: sk-fake, mock_response: 'hello'}\n"
        f"general_settings: {{master_key: {MASTER}}}\n"
        "litellm_settings: {callbacks: ['govsite_callback.proxy_handler_instance']}\n"
    )
    spool = tmp_path / "spool"
    govsite_port = free_port()  # nothing listens there yet: govsite is down
    env = callback_env(
        tmp_path,
        ingest_url=f"http://127.0.0.1:{govsite_port}/api/ingest/spend",
        ingest_token=secret,
        GOVSITE_SPOOL_DIR=str(spool),
        GOVSITE_SPOOL_MAX_DELAY="1",
    )

    def spooled():
        return sorted(p.name for p in spool.glob("*.json")) if spool.exists() else []

    proxy = start_real_proxy(tmp_path, config, env=env, name="proxy-1")
    try:
        for _ in range(2):
            _call(proxy.url)
        wait_until(lambda: len(spooled()) == 2, timeout=60, what="two payloads in the spool")
    finally:
        proxy.stop()

    proxy = start_real_proxy(tmp_path, config, env=env, name="proxy-2")
    url = proxy.url
    forwarder = None
    try:
        assert len(spooled()) == 2, "the restarted proxy still holds what the first one spooled"
        _call(url)
        wait_until(lambda: len(spooled()) == 3, timeout=60, what="the third payload in the spool")
        assert SpendRecord.objects.count() == 0

        forwarder = Forwarder(govsite_port, (live_server.thread.host, live_server.thread.port))
        wait_until(lambda: SpendRecord.objects.count() >= 3 and not spooled(), timeout=90, what="the spool sent")
        assert SpendRecord.objects.count() == 3
        assert {row.source for row in SpendRecord.objects.all()} == {"push"}
        # The callback reported its spool with each delivery: the last one found it empty.
        token = IngestToken.objects.get(name="spooling proxy")
        assert token.spool_reported_at is not None and token.spool_files == 0
        page = admin_client.get("/budgets/reconciliation/")
        assert "Callback spool (spooling proxy)" in page.content.decode()
    finally:
        proxy.stop()
        if forwarder is not None:
            forwarder.close()
