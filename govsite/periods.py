"""One rule for every range of days a person gives (report periods, dashboard filters, custom budget
periods, API filters): it must not end before it starts. A reversed range is refused, never swapped."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError

REVERSED = "The period ends before it starts."


def period_validate(start: date | None, end: date | None, *, end_field: str = "period_end") -> None:
    """Raise a ValidationError on `end_field` when both ends are given and the end comes first."""
    if start is not None and end is not None and end < start:
        raise ValidationError({end_field: REVERSED})


def form_period_validate(form, start_field: str, end_field: str) -> None:
    """For a form's clean(): the same rule, its error put on the form's end field."""
    try:
        period_validate(form.cleaned_data.get(start_field), form.cleaned_data.get(end_field), end_field=end_field)
    except ValidationError as exc:
        form.add_error(None, exc)
