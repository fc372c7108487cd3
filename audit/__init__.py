"""Audit log. Services call `audit.record(...)` inside their own transaction."""


def record(**kwargs):
    # Imported when called: Django imports this package while it loads the apps, before models may be
    # imported, and audit.chain imports audit.models.
    from audit.chain import record as _record

    return _record(**kwargs)


def record_many(events):
    """Several events, in order, in the caller's transaction (see audit.chain.record_many)."""
    from audit.chain import record_many as _record_many

    return _record_many(events)
