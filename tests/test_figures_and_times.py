"""Pages that read at a glance: figures carry thousands separators, times carry their time zone.

The templates are read as text (a time shown without its zone, a figure formatted without grouping, is found
where it is written); the dashboards' tables group their figures in HTML and keep plain numbers in their CSV;
a page rendered with a large figure shows it grouped.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template
from django.template.defaultfilters import floatformat

from adoption.tables import Column, Table, csv_response, grouped
from govsite.templatetags.figures import amount

TEMPLATES = Path(settings.BASE_DIR) / "templates"
# A date filter whose format shows the time of day (H or G) names its zone (T, e, O, c, r, U) or is followed by
# a literal "UTC".
TIME_WITHOUT_ZONE = re.compile(r'\|date:"(?=[^"]*[HG])(?![^"]*[TeOcrU])[^"]*"[^}]*\}\}(?!\s*UTC)')
UNGROUPED_FLOAT = re.compile(r'\|floatformat:(?:"?\d"?)(?![\dg])')  # the templates group with amount:N
BARE_DOLLARS = re.compile(r"\$\{\{ [a-z_][a-z0-9_.]* \}\}")  # an amount printed as it is stored: 5000.00


def _found(pattern: re.Pattern) -> list[str]:
    """Where a pattern matches in the templates: "path: text" each."""
    return [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for match in pattern.finditer(path.read_text())
    ]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("12345.60", "12,345.60"),
        ("-1234567", "-1,234,567"),
        ("999", "999"),
        ("1.50 s", "1.50 s"),
        ("1500 ms", "1,500 ms"),
        ("12.3%", "12.3%"),
    ],
)
def test_a_figure_is_grouped_by_thousands_on_the_page(text, shown):
    assert grouped(text) == shown


def test_every_time_of_day_in_the_templates_names_its_time_zone():
    found = _found(TIME_WITHOUT_ZONE)
    assert not found, "times shown without their zone:\n" + "\n".join(found)
    # The pattern finds what it is for.
    assert TIME_WITHOUT_ZONE.search('{{ t|date:"Y-m-d H:i" }}')
    assert not TIME_WITHOUT_ZONE.search('{{ t|date:"Y-m-d H:i T" }}')
    assert not TIME_WITHOUT_ZONE.search('{{ t|date:"H:i:s" }} UTC')


def test_every_decimal_figure_in_the_templates_is_grouped_by_thousands():
    found = _found(UNGROUPED_FLOAT)
    assert not found, "figures formatted without thousands separators:\n" + "\n".join(found)
    assert UNGROUPED_FLOAT.search("{{ x|floatformat:2 }}") and not UNGROUPED_FLOAT.search('{{ x|floatformat:"2g" }}')
    bare = _found(BARE_DOLLARS)
    assert not bare, "amounts shown without thousands separators:\n" + "\n".join(bare)


def test_amount_shows_every_figure_as_djangos_floatformat_with_grouping_does():
    """The templates' `amount:N` is a faster `floatformat:"Ng"`: the same text for every kind of value."""
    import random

    rng = random.Random(16)
    values = [None, "", "n/a", "12.5", True, 0, -0.0, 2.675, -1234.565, 1e20, float("inf"), 10**20]
    values += [Decimal(text) for text in ("-0.001", "-0.005", "0.005", "2.675", "1E+30", "NaN", "-1234567.8949")]
    for _ in range(3000):
        values.append(Decimal(rng.randint(-(10**12), 10**12)).scaleb(-rng.randint(0, 9)))
        values.append(rng.uniform(-1e7, 1e7))
        values.append(rng.randint(-(10**9), 10**9))
    differ = [
        (value, places, amount(value, places), floatformat(value, f"{places}g"))
        for value in values
        for places in (1, 2, 6)
        if amount(value, places) != floatformat(value, f"{places}g")
    ]
    assert not differ, differ[:10]
    assert amount(Decimal("1234567.005"), 2) == "1,234,567.01"


def test_a_time_renders_with_the_sites_zone_and_figures_with_separators():
    from datetime import UTC, datetime

    out = Template('{% load humanize %}{{ t|date:"Y-m-d H:i T" }} {{ n|intcomma }} {{ d|amount:2 }}').render(
        Context({"t": datetime(2026, 12, 5, 14, 30, tzinfo=UTC), "n": 1234567, "d": Decimal("12345.678")})
    )
    assert out == "2026-12-05 14:30 UTC 1,234,567 12,345.68"


def test_the_dashboards_tables_group_figures_on_the_page_and_keep_plain_numbers_in_the_csv():
    table = Table(
        name="t",
        title="T",
        columns=[Column("team", "Team"), Column("requests", "Requests", "int"), Column("cost", "Cost ($)", "money")],
        rows=[{"team": "payments", "requests": 123456, "cost": Decimal("98765.4")}],
    )
    html = str(table.html())
    assert '<td class="num">123,456</td>' in html and '<td class="num">98,765.40</td>' in html
    body = csv_response(table, "t").content.decode()
    assert "payments,123456,98765.40" in body


def test_the_chargeback_table_shows_a_months_spend_and_requests_grouped():
    from django.template.loader import render_to_string

    month = {"cost": Decimal("1234567.891"), "requests": 2345678, "unpriced": 1200, "flat_rate": 0}
    line = {"cost_centre": "CC-7", "team_name": "Payments", "month": month, "previous": {"cost": Decimal("1000")}}
    html = render_to_string(
        "budgets/_chargeback_table.html",
        {"report": {"lines": [line], "centres": [], "total": {**line, "adjustment": {}}}},
    )
    assert "$1,234,567.89" in html and "2,345,678" in html and "1,200" in html
    assert "$1,000.00" in html
