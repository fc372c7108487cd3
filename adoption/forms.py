"""The period chooser of the cost dashboards and the usage page."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from django import forms

from govsite.periods import form_period_validate

MAX_PERIOD_DAYS = 400
EARLIEST = date(2020, 1, 1)


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    label: str
    # One of PeriodForm.PERIODS' names (relative to today), or "custom": a dashboard keeps the figures of a
    # named period only, so the number of figures kept stays bounded (adoption.costs.cost_dashboard).
    name: str = "custom"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=offset) for offset in range(self.days)]

    @property
    def query(self) -> dict[str, str]:
        return {"period": "custom", "start": self.start.isoformat(), "end": self.end.isoformat()}


def _month(day: date) -> tuple[date, date]:
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


def named_period(name: str, today: date) -> Period:
    if name == "this_month":
        start, end = _month(today)
        return Period(start, end, f"{start:%B %Y}", name)
    if name == "last_month":
        start, end = _month(today.replace(day=1) - timedelta(days=1))
        return Period(start, end, f"{start:%B %Y}", name)
    days = {"7d": 7, "30d": 30, "90d": 90}[name]
    return Period(today - timedelta(days=days - 1), today, f"the last {days} days", name)


class PeriodForm(forms.Form):
    PERIODS = [
        ("this_month", "This month"),
        ("last_month", "Last month"),
        ("7d", "Last 7 days"),
        ("30d", "Last 30 days"),
        ("90d", "Last 90 days"),
        ("custom", "From – to"),
    ]
    DEFAULT = "30d"

    period = forms.ChoiceField(choices=PERIODS, required=False, initial=DEFAULT)
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data=None, *, today: date, **kwargs):
        self.today = today
        super().__init__(data, **kwargs)

    def clean(self):
        data = super().clean()
        if data.get("period") != "custom":
            if data.get("start") or data.get("end"):
                data["period"] = "custom"  # dates given without choosing "From – to" mean a custom period
            else:
                return data
        start, end = data.get("start"), data.get("end")
        if start is None:
            self.add_error("start", "Give the first day of the period.")
        if end is None:
            self.add_error("end", "Give the last day of the period.")
        if start and end:
            form_period_validate(self, "start", "end")
            if end >= start and (end - start).days + 1 > MAX_PERIOD_DAYS:
                self.add_error("end", f"A period is at most {MAX_PERIOD_DAYS} days.")
            if start < EARLIEST:
                self.add_error("start", f"The ledger starts after {EARLIEST:%Y-%m-%d}.")
        return data

    def chosen_period(self) -> Period:
        """The chosen period, or the default one when the form is unbound or invalid."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        name = data.get("period") or self.DEFAULT
        if name == "custom":
            start, end = data["start"], data["end"]
            return Period(start, end, f"{start:%Y-%m-%d} – {end:%Y-%m-%d}")
        return named_period(name, self.today)
