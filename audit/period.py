"""A reporting period: whole UTC days, both ends inclusive, as auditors state them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from govsite.periods import period_validate


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @classmethod
    def checked(cls, start: date | None, end: date | None, *, today: date | None = None) -> Period:
        """The period, or a ValidationError naming the field that is wrong."""
        if start is None:
            raise ValidationError({"period_start": "Give the first day of the period."})
        if end is None:
            raise ValidationError({"period_end": "Give the last day of the period."})
        period_validate(start, end)
        today = today or timezone.now().date()
        if start > today:
            raise ValidationError({"period_start": "The period starts in the future."})
        if end > today:
            raise ValidationError({"period_end": "The period cannot end after today."})
        return cls(start, end)

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_before(self) -> datetime:
        """The first instant after the period (exclusive upper bound)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __str__(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"
