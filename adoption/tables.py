"""Tables as the pages show them and as CSV downloads them: one object feeds both.

Every cell is formatted once (plain text: no thousands separators, no currency sign; the column
header names the unit), so a downloaded table is exactly the table on the page.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from html import escape as _escape  # what django.utils.html.escape does, without its lazy-string wrapper
from typing import Any

from django.http import HttpResponse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

TOO_FEW = "too few people to show without identifying someone"


class _Hidden:
    """A figure computed over fewer than ADOPTION_MIN_GROUP people: shown as TOO_FEW, never as a number."""

    def __repr__(self):
        return "HIDDEN"

    def __bool__(self):
        return False


HIDDEN = _Hidden()


def money(value) -> str:
    return f"{Decimal(value or 0):.2f}"


def percent(value) -> str:
    return f"{float(value) * 100:.1f}%"


def number(value) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def millis(value) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value} ms"


FORMATS: dict[str, Callable[[Any], str]] = {
    "text": str,
    "int": number,
    "number": number,
    "money": money,
    "percent": percent,
    "date": lambda value: value.isoformat() if isinstance(value, date) else str(value),
    "ms": millis,
}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"
    # Optional: the URL a cell links to, from its row (HTML only).
    link: Callable[[dict], str | None] | None = None

    @property
    def numeric(self) -> bool:
        return self.kind not in ("text", "date")


def format_value(value, kind: str) -> str:
    if value is HIDDEN:
        return TOO_FEW
    if value is None:
        return "—"
    return FORMATS[kind](value)


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict]
    note: str = ""
    empty: str = "Nothing in this period."
    footer: dict | None = None  # a totals row, formatted like the others
    extra: dict = field(default_factory=dict)

    def _texts(self, row: dict) -> list[str]:
        return [format_value(row.get(column.key), column.kind) for column in self.columns]

    def html(self) -> SafeString:
        """The <table> itself. Built here rather than cell by cell in a template: a page holds thousands
        of cells, and the template engine would spend most of the page's time on them."""
        head = "".join(f"<th{NUM if c.numeric else ''}>{escape(c.label)}</th>" for c in self.columns)
        body = "".join(f"<tr>{self._row_html(row)}</tr>" for row in self.rows)
        foot = f"<tfoot><tr>{self._row_html(self.footer)}</tr></tfoot>" if self.footer else ""
        return mark_safe(  # noqa: S308 - every text above is escaped
            f'<table class="dense" data-table="{escape(self.name)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody>{foot}</table>"
        )

    def _row_html(self, row: dict) -> str:
        # The dashboards' hot path: a page holds thousands of cells.
        html = []
        for column in self.columns:
            value = row.get(column.key)
            if value is HIDDEN:
                html.append(f'<td class="too-few">{_escape(TOO_FEW)}</td>')
                continue
            text = format_value(value, column.kind)
            text = _escape(grouped(text) if column.numeric else text)
            url = column.link(row) if column.link and value is not None else None
            if url:
                text = f'<a href="{_escape(url)}">{text}</a>'
            html.append(f'<td class="num">{text}</td>' if column.numeric else f"<td>{text}</td>")
        return "".join(html)

    def text_rows(self) -> list[list[str]]:
        """Header, rows and totals as the page shows them (what the CSV holds)."""
        rows = [[column.label for column in self.columns]]
        rows += [self._texts(row) for row in self.rows]
        if self.footer:
            rows.append(self._texts(self.footer))
        return rows


_LEADING_NUMBER = re.compile(r"^(-?)(\d{4,})")


def grouped(text: str) -> str:
    """A figure's integer part with thousands separators, as the page shows it: "12345.60" -> "12,345.60",
    "1500 ms" -> "1,500 ms". The CSV keeps the plain number a spreadsheet reads."""
    return _LEADING_NUMBER.sub(lambda m: f"{m.group(1)}{int(m.group(2)):,}", text, count=1)


NUM = ' class="num"'
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(text: str) -> str:
    # A team name or tag starting like a formula would run in a spreadsheet; numbers are left alone.
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def csv_response(table: Table, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    writer = csv.writer(response)
    for row in table.text_rows():
        writer.writerow([_csv_safe(text) for text in row])
    return response


def by_name(tables: Iterable[Table]) -> dict[str, Table]:
    return {table.name: table for table in tables}
