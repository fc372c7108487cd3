"""govsite/gateway/callback.py as LiteLLM loads it: no Django, usage asked for on streamed calls,
and nothing of the conversation sent to govsite."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from govsite.gateway.callback import GovsiteSpendCallback, ingest_body, proxy_handler_instance
from tests.budgets.conftest import sample

ROOT = Path(__file__).resolve().parents[2]


def test_the_callback_imports_nothing_from_django():
    code = (
        "import sys; import govsite.gateway.callback as c; "
        "assert c.proxy_handler_instance is not None; "
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def _hook(data: dict, call_type: str = "acompletion") -> dict:
    return asyncio.run(proxy_handler_instance.async_pre_call_hook(None, None, data, call_type))


def test_a_streamed_request_asks_for_usage_and_keeps_its_other_stream_options():
    assert _hook({"model": "gpt-4o", "stream": True})["stream_options"] == {"include_usage": True}
    kept = _hook({"model": "gpt-4o", "stream": True, "stream_options": {"include_obfuscation": False}})
    assert kept["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert "stream_options" not in _hook({"model": "gpt-4o"})
    assert "stream_options" not in _hook({"model": "text-embedding-3-small", "stream": True}, "aembedding")


def test_what_is_posted_leaves_out_the_conversation_and_request_headers():
    payload = sample("standard-logging-object.plain-gpt-4o")
    payload["metadata"]["requester_metadata"]["headers"]["authorization"] = "Bearer sk-secret"
    posted = json.loads(ingest_body(payload))
    assert "messages" not in posted and "response" not in posted
    assert posted["metadata"]["requester_metadata"]["headers"] == {"user-agent": "claude-cli/2.0.1 (external, cli)"}
    assert posted["id"] == payload["id"] and posted["metadata"]["usage_object"] == payload["metadata"]["usage_object"]


def test_without_url_and_token_nothing_is_sent():
    callback = GovsiteSpendCallback(url="", token="")
    assert asyncio.run(callback.push(sample("standard-logging-object.plain-gpt-4o"))) is False


def test_govsite_down_is_logged_does_not_fail_the_call_and_the_payload_is_spooled(caplog, tmp_path):
    from tests.gateway_fixtures import free_port

    callback = GovsiteSpendCallback(
        url=f"http://127.0.0.1:{free_port()}/api/ingest/spend", token="gsi_x", spool_dir=str(tmp_path)
    )
    payload = sample("standard-logging-object.plain-gpt-4o")
    assert asyncio.run(callback.push(payload)) is False
    assert "spooled, sent again later" in caplog.text
    assert [json.loads(path.read_text())["id"] for path in callback.spool.waiting()] == [payload["id"]]


def test_the_spool_sends_oldest_first_and_takes_back_a_file_a_stopped_process_was_sending(tmp_path):
    from govsite.gateway.callback import Spool

    spool = Spool(tmp_path / "spool")
    assert spool.waiting() == [] and spool.report() == "0 0"
    first, second = spool.put(b'{"n": 1}'), spool.put(b'{"n": 2}')
    assert spool.waiting() == [first, second]
    claimed = spool.claim(first)
    assert spool.waiting() == [second] and spool.claim(first) is None  # another worker cannot take it too
    # The process sending it stopped long ago: its claim lapses and the file waits again.
    claimed.rename(claimed.with_name(f"{first.name}.1000.sending"))
    assert spool.waiting() == [first, second]
    files, oldest = spool.report().split()
    assert files == "2" and int(oldest) > 0
