"""`{{ value|amount:2 }}`: a figure rounded half up to that many places and grouped by thousands, as
Django's `floatformat:"2g"` shows it, for a fraction of its cost.

A queue or key list shows a hundred figures a page; `floatformat` looks up the locale's separators for each
one (about 25 µs), this formats with the separators of the site's one language (en-us) directly. Anything that
is not a finite number falls back to `floatformat` itself, so both always agree (tests/test_figures_and_times.py
compares them).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()

_QUANTUM = {places: Decimal(1).scaleb(-places) for places in range(10)}


@register.filter(is_safe=True)
def amount(value, places: int = 2) -> str:
    quantum = _QUANTUM.get(places)
    if quantum is None or isinstance(value, bool):
        return floatformat(value, f"{places}g")
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))
        else:
            return floatformat(value, f"{places}g")
        if not number.is_finite():
            return floatformat(value, f"{places}g")
        rounded = number.quantize(quantum, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return floatformat(value, f"{places}g")
    if not rounded:
        rounded = abs(rounded)  # never "-0.00"
    return f"{rounded:,.{places}f}"
