"""JSON log lines that operators can search: every line from the web, the RQ workers and cron is one JSON
object carrying `request_id`, `user_id` and `job_id` (null where there is none), whatever logger wrote it.

- The web: `LogContextMiddleware` (after the authentication and request-id middlewares) binds the request;
  the person is read from it when the line is written, so a person authenticated later by an API token is
  named too. The binding ends with the request (`request_finished`), after Django's own 4xx/5xx lines.
- RQ workers: the job being performed (`rq.get_current_job`, and `Worker`, which binds it around the
  whole of `perform_job`); in-process jobs (no Redis) and cron runs bind theirs with `bound_job`.
- No secret in any line: values that look like a key (`sk-…`), an API or SCIM token (`gst_…`, `scim_…`), a
  bearer credential or a Slack webhook path are masked by the last processor before rendering, a net
  under the rule that nothing logs a secret in the first place.

A foundation module: it imports no app. `settings.LOGGING` names `json_formatter`.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from django.core.signals import request_finished
from django.utils.functional import empty
from rq import get_current_job
from rq.worker import Worker as RqWorker

_request: contextvars.ContextVar[Any] = contextvars.ContextVar("govsite_log_request", default=None)
_job: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("govsite_log_job", default=None)

access_log = logging.getLogger("govsite.request")

# What a secret looks like in govsite: keys (sk-), API tokens (gst_), SCIM tokens, bearer credentials, the
# secret path of a Slack incoming webhook. Each is replaced by its kind; nothing of the secret is kept.
_SECRET_PATTERNS = [
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), "sk-[redacted]"),
    (re.compile(r"\bgst_[A-Za-z0-9_\-]{8,}"), "gst_[redacted]"),
    (re.compile(r"\bscim_[A-Za-z0-9_\-]{8,}"), "scim_[redacted]"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 [redacted]"),
    (re.compile(r"/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+"), "/services/[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# --- binding -------------------------------------------------------------------------------------------------


@contextmanager
def bound_job(name: str, job_id: str | None = None) -> Iterator[str]:
    """Lines written inside carry this job (an in-process job, a cron run); yields its id."""
    job_id = job_id or uuid.uuid4().hex
    token = _job.set((job_id, name))
    try:
        yield job_id
    finally:
        _job.reset(token)


def _user_id(request) -> int | None:
    # Only a person already known: reading request.user here could query the database from inside logging.
    user = request.__dict__.get("user")
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)  # SimpleLazyObject until AuthenticationMiddleware's user is read
    if wrapped is empty or not getattr(wrapped, "is_authenticated", False):
        return None
    return wrapped.pk


def add_context(logger, method_name: str, event_dict: dict) -> dict:
    request = _request.get()
    event_dict.setdefault("request_id", getattr(request, "request_id", None) if request is not None else None)
    event_dict.setdefault("user_id", _user_id(request) if request is not None else None)
    job = _job.get()
    if job is None:
        current = get_current_job()
        job = (current.id, current.func_name) if current is not None else None
    event_dict.setdefault("job_id", job[0] if job else None)
    if job:
        event_dict.setdefault("job", job[1])
    return event_dict


def redact_secrets(logger, method_name: str, event_dict: dict) -> dict:
    event_dict.pop("message", None)  # the stdlib's copy of `event`
    for key, value in list(event_dict.items()):
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def json_formatter() -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: stdlib records (Django's, RQ's, ours) become one JSON object each."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_context,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(default=str),
        ],
    )


# --- the web -------------------------------------------------------------------------------------------------


class LogContextMiddleware:
    """Binds the request for every line written while it is handled, then writes one access line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _request.set(request)
        started = time.monotonic()
        response = self.get_response(request)
        # The path without its query string: a query may carry what is nobody's business in a log.
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return response


def _request_done(**kwargs) -> None:
    _request.set(None)


# After the response is sent: Django's own lines about it (a 404's, a 500's) still carry the request.
request_finished.connect(_request_done, dispatch_uid="govsite.logs.request_done")


# --- RQ workers ----------------------------------------------------------------------------------------------


class JobLogContext:
    """Mixed into an RQ worker: every line about a job (its start, its result, its failure) carries the job."""

    def perform_job(self, job, queue):
        with bound_job(job.func_name, job.id):
            return super().perform_job(job, queue)


class Worker(JobLogContext, RqWorker):
    """RQ's own worker with the job on every line (govsite.worker's preloaded workers mix the same in)."""
