"""Audit log. Services call `audit.record(...)` inside their own transaction."""


def record(**kwargs):
    from audit.chain import record as _record

    return _record(**kwargs)
