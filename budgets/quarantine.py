"""Spend rows the ledger could not book, kept aside so that one bad row never stops it.

`hold` is called by the ingest (budgets.ingest) for every row it leaves out; admins see the rows at
/budgets/quarantine/ and retry (after a fix: in govsite, or of the row itself) or discard them
(budgets.services.quarantined_row_retry / _discard, audited in the transaction that changes the row).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, QuerySet

from budgets.models import QuarantinedRow
from govsite.accounts import permissions
from govsite.accounts.models import User

MAX_RAW_CHARS = 1_000_000  # the push endpoint's body limit


def text_safe(raw: Any) -> str:
    """The row as JSON text PostgreSQL can store: non-ASCII (NUL included) escaped, depth no matter."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        text = json.dumps(raw)  # a body that is not JSON: kept as one JSON string
    else:
        try:
            text = json.dumps(raw, ensure_ascii=True, default=str, sort_keys=True)
        except (RecursionError, ValueError, TypeError) as exc:
            text = json.dumps(f"(the row could not be written out: {type(exc).__name__})")
    return text[:MAX_RAW_CHARS]


def _request_id(raw: Any) -> str:
    if isinstance(raw, dict):
        value = raw.get("request_id") or raw.get("id")
        if isinstance(value, str):
            return value.replace("\x00", "")[:255]
    return ""


def hold(rows: Iterable[tuple[Any, str, str]], source: str) -> int:
    """Keep (raw row, field, reason) aside. A row already kept (read again) is not kept twice."""
    held = []
    for raw, field, reason in rows:
        text = text_safe(raw)
        held.append(
            QuarantinedRow(
                fingerprint=hashlib.sha256(text.encode()).hexdigest(),
                raw=text,
                request_id=_request_id(raw),
                field=field.replace("\x00", "")[:100],
                reason=reason.replace("\x00", "\\u0000")[:2000],
                source=source,
            )
        )
    if held:
        QuarantinedRow.objects.bulk_create(held, ignore_conflicts=True)
    return len(held)


# --- reads -------------------------------------------------------------------------------------------


def quarantine_list(*, user: User, status: str = QuarantinedRow.Status.HELD) -> QuerySet[QuarantinedRow]:
    if not permissions.can_view_reconciliation(user):
        return QuarantinedRow.objects.none()
    return QuarantinedRow.objects.filter(status=status).select_related("resolved_by").defer("raw")


def quarantine_counts() -> dict[str, int]:
    counts = dict(QuarantinedRow.objects.values_list("status").annotate(n=Count("pk")).order_by())
    return {status: counts.get(status, 0) for status in QuarantinedRow.Status.values}
