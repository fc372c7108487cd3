"""POST /api/ingest/spend — where the gateway callback (govsite/gateway/callback.py) pushes spend.

Authenticated by an ingest token (`Authorization: Bearer gsi_...`) and by nothing else: no session
cookie is ever read here, which is why — and the only reason — CSRF protection is off for it.
Every answer is JSON; a refused request writes nothing to the ledger (an invalid row is quarantined
for admins, budgets.quarantine) and is answered 4xx naming the problem, never 5xx.
"""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from budgets import quarantine, services
from budgets.ingest import BatchInvalid, ingest_spend_rows

MAX_BODY_BYTES = 1024 * 1024
MAX_ROWS = 1000


def _error(status: int, code: str, message: str, **extra) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message, **extra}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="govsite-ingest"'
    return response


def _bearer(request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


@csrf_exempt  # token-authenticated only (see the module docstring); a session cookie grants nothing here
@never_cache
def ingest_spend(request):
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Use POST.")
        response["Allow"] = "POST"
        return response
    token = services.ingest_token_authenticate(_bearer(request))
    if token is None:
        return _error(401, "unauthorized", "A valid ingest token is required: Authorization: Bearer <token>.")
    services.ingest_token_note_spool(token=token, report=request.headers.get("X-Govsite-Spool", ""))
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "bad_request", "Content-Length is not a number.")
    if length > MAX_BODY_BYTES:
        return _error(413, "too_large", f"The body is over {MAX_BODY_BYTES} bytes.", limit=MAX_BODY_BYTES)
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "too_large", f"The body is over {MAX_BODY_BYTES} bytes.", limit=MAX_BODY_BYTES)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "malformed_json", "The body is not valid JSON.")
    except RecursionError:
        quarantine.hold([(body, "body", "nested too deeply to read")], "push")
        return _error(400, "too_deep", "The body is nested too deeply.", field="body")
    rows = payload if isinstance(payload, list) else [payload]
    if not rows or len(rows) > MAX_ROWS:
        return _error(400, "bad_request", f"Send one logging payload, or a list of 1 to {MAX_ROWS}.")
    try:
        result = ingest_spend_rows(rows, "push", strict=True)
    except BatchInvalid as exc:
        # Kept for admins, like a bad row the pull reads: the gateway drops a payload refused with 4xx.
        quarantine.hold([(rows[exc.index] if exc.index >= 0 else payload, exc.field, str(exc))], "push")
        return _error(400, "invalid", str(exc), field=exc.field, index=exc.index)
    return JsonResponse(
        {"received": result.received, "inserted": result.inserted, "duplicates": result.duplicates}, status=200
    )
