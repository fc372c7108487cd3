"""The outbox: work that leaves govsite (a gateway call, an email, a Slack message, an evidence
bundle) is a row written in the transaction that decided it, carried out by a job after commit,
retried with back-off, given up after N attempts, and found again by a sweeper when the queue lost
it. Postgres is the truth; the queue only says "look at row N now".

Gateway commands (keys), alert deliveries (budgets) and evidence exports (audit) are its users. A
row of an outbox model has `status`, `attempts`, `next_attempt_at` (when a waiting row is due; while
it runs, when its worker's lease ends) and an error text field. A job reads:

    row = OUTBOX.claim(pk)                  # None: finished, or another worker holds it
    if row is None:
        return "skipped"
    try:
        result = work(row)                  # outside any transaction: HTTP, SMTP, files
    except SomeError as exc:
        return OUTBOX.fail(row.pk, exc, retryable=...).status
    OUTBOX.complete(row.pk, apply=...)      # the row done, its effects and audit events: one transaction

A foundation module: it imports no app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from govsite import jobs

ERROR_LENGTH = 2000


@dataclass(frozen=True)
class Outbox:
    """How one model's rows are claimed, retried, given up and swept."""

    model: type[models.Model]
    job: str  # dotted path of the job that takes a row's pk (the job module imports the services defining this)
    waiting: tuple[str, ...]  # statuses of a row that is still to run
    retry: str  # the status a retryable failure leaves
    running: str
    done: str
    gave_up: str
    max_attempts: int
    lease: timedelta  # a worker silent this long is taken for dead; its row may be claimed again
    backoff_base: timedelta
    backoff_cap: timedelta = timedelta(hours=1)
    error_field: str = "last_error"
    grace: timedelta = timedelta(0)  # a waiting row younger than this is left to the job enqueued with it
    on_give_up: Callable[[models.Model], None] | None = None  # in the give-up transaction: its effects, audit
    queue: str = "default"

    def enqueue(self, pk: int) -> None:
        """The row's job, once the surrounding transaction commits."""
        jobs.enqueue(self.job, pk, queue=self.queue)

    def backoff(self, attempts: int) -> timedelta:
        return min(self.backoff_base * 2 ** (attempts - 1), self.backoff_cap)

    def _save(self, row: models.Model, *fields: str) -> None:
        names = list(fields)
        if any(field.name == "updated_at" for field in row._meta.concrete_fields):
            names.append("updated_at")
        row.save(update_fields=names)

    def _claimable(self, now: datetime) -> Q:
        # A waiting row runs whenever its job comes (the sweeper alone waits for the back-off); a running
        # one only once its worker's lease ran out, while attempts remain (the sweeper gives up the rest).
        return Q(status__in=self.waiting) | Q(
            status=self.running, next_attempt_at__lte=now, attempts__lt=self.max_attempts
        )

    def claim(self, pk: int, *, now: datetime | None = None) -> models.Model | None:
        """Take the row for this worker: one more attempt, a lease from now. None when there is
        nothing to do (finished, given up) or another worker holds it."""
        now = now or timezone.now()
        with transaction.atomic():
            row = (
                self.model.objects.select_for_update(skip_locked=True)
                .filter(pk=pk)
                .filter(self._claimable(now))
                .first()
            )
            if row is None:
                return None
            row.status = self.running
            row.attempts += 1
            row.next_attempt_at = now + self.lease
            self._save(row, "status", "attempts", "next_attempt_at")
            return row

    def extend_lease(self, pk: int, **fields) -> None:
        """A long job says it is alive (and may record its progress in `fields`)."""
        self.model.objects.filter(pk=pk, status=self.running).update(
            next_attempt_at=timezone.now() + self.lease, **fields
        )

    def complete(self, pk: int, apply: Callable[[models.Model], None] | None = None) -> models.Model:
        """In one transaction: the row done, then `apply(row)` records what the work changed."""
        with transaction.atomic():
            row = self.model.objects.select_for_update().get(pk=pk)
            row.status = self.done
            setattr(row, self.error_field, "")
            self._save(row, "status", self.error_field)
            if apply is not None:
                apply(row)
        return row

    def fail(self, pk: int, error: Exception | str, *, retryable: bool = True, now: datetime | None = None):
        """Record why the attempt failed; try again after the back-off, or give up (no attempts left,
        or an error trying again cannot fix)."""
        now = now or timezone.now()
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        with transaction.atomic():
            row = self.model.objects.select_for_update().get(pk=pk)
            setattr(row, self.error_field, text[:ERROR_LENGTH])
            if retryable and row.attempts < self.max_attempts:
                row.status = self.retry
                row.next_attempt_at = now + self.backoff(row.attempts)
                self._save(row, "status", "next_attempt_at", self.error_field)
            else:
                self._give_up(row)
        return row

    def _give_up(self, row: models.Model) -> None:
        row.status = self.gave_up
        self._save(row, "status", self.error_field)
        if self.on_give_up is not None:
            self.on_give_up(row)

    def sweep(self, *, now: datetime | None = None, limit: int = 500) -> int:
        """Give up rows whose last allowed attempt's worker died; enqueue what is due: waiting rows past
        their back-off (or that the queue lost), running ones whose lease ran out. Returns how many."""
        now = now or timezone.now()
        dead = self.model.objects.filter(
            status=self.running, next_attempt_at__lte=now, attempts__gte=self.max_attempts
        ).values_list("pk", flat=True)
        for pk in list(dead):
            with transaction.atomic():
                row = (
                    self.model.objects.select_for_update(skip_locked=True)
                    .filter(pk=pk, status=self.running, next_attempt_at__lte=now)
                    .first()
                )
                if row is not None:
                    setattr(
                        row, self.error_field, f"its worker stopped during each of {row.attempts} attempts; gave up"
                    )
                    self._give_up(row)
        due = list(
            self.model.objects.filter(
                Q(status__in=self.waiting, next_attempt_at__lte=now - self.grace)
                | Q(status=self.running, next_attempt_at__lte=now)
            )
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        for pk in due:
            self.enqueue(pk)
        return len(due)
