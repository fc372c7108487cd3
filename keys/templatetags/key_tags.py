"""The key lists' sortable column headers and their usage figures."""

from decimal import Decimal

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def sort_header(label: str, column: str, sort: str, filters: str, css: str = ""):
    """A column header that sorts the list by `column` (again: the other way), saying which way it is sorted."""
    ascending = sort == column
    descending = sort == f"-{column}"
    target = f"-{column}" if ascending else column
    arrow = " ▲" if ascending else (" ▼" if descending else "")
    aria = "ascending" if ascending else ("descending" if descending else "none")
    query = f"{filters}&sort={target}" if filters else f"sort={target}"
    return format_html(
        '<th scope="col" class="{}" aria-sort="{}"><a href="?{}">{}{}</a></th>', css, aria, query, label, arrow
    )


@register.filter
def percent(share) -> str:
    """1 → "100%", 0.1234 → "12.3%"; nothing when there is no share to show."""
    if share is None:
        return "—"
    return f"{Decimal(share) * 100:,.1f}%"


@register.filter
def money(value) -> str:
    """Dollars with thousands separators and cents: 12345.6 → "$12,345.60"."""
    if value is None or value == "":
        return "—"
    return f"${Decimal(value):,.2f}"
