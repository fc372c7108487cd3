"""Plotly charts: the figure is rendered on the server as JSON data in the page, drawn by the site's own
static/js/charts.js (no inline script, for the Content-Security-Policy); plotly.js and the stylesheet it
would otherwise inject are served by the site itself (views.plotly_js, views.plotly_css), never a CDN.

Every chart's configuration is CONFIG: a toolbar of two buttons (download as PNG, reset the axes), no
plotly logo, no "Share chart…" (it uploads the chart to Plotly Cloud) and no URL of any other host.
charts.js names each chart by its caption (role="img") and describes it by its numbers table.

Figures are built as plain plotly figure dicts and rendered with `plotly.io.to_html(validate=False)`:
building `plotly.graph_objects.Figure` validates every property on every request (10–20 ms a chart),
which the dashboards cannot afford; the tests build a `Figure` from each dict, so an invalid property
still fails. Every chart has its numbers in a table under it (adoption.tables).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from django.utils.html import format_html
from plotly.utils import PlotlyJSONEncoder

from adoption.tables import HIDDEN

CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtons": [["toImage", "resetScale2d"]],
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "showLink": False,
    "plotlyServerURL": "",
    "topojsonURL": "",
    "toImageButtonOptions": {"format": "png"},
}
FONT = {"family": 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', "size": 12, "color": "#1d2430"}


@dataclass
class Chart:
    name: str
    title: str
    figure: dict
    table: str  # the name of the table holding its numbers

    @property
    def html(self) -> str:
        """The chart's <div> with the figure and CONFIG as JSON data (not script: nothing runs inline)."""
        spec = json.dumps({**self.figure, "config": CONFIG}, cls=PlotlyJSONEncoder, separators=(",", ":"))
        spec = spec.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return format_html(
            '<div class="plotly-chart" id="chart-{}" data-caption="caption-{}" data-table="table-{}"></div>'
            '<script type="application/json" id="chart-{}-figure">{}</script>',
            self.name,
            self.name,
            self.table,
            self.name,
            _Raw(spec),
        )


class _Raw(str):
    """Already-escaped JSON for format_html (every <, > and & is a \\u escape)."""

    def __html__(self) -> str:
        return str(self)


# plotly.js injects its own stylesheet as a <style> element, which the CSP refuses. It skips that when the
# page already has a stylesheet with the id and class below (plotly's documented way for a strict CSP), so
# the site serves the same rules, read from the bundle it serves, as a static stylesheet of its own.
PLOTLY_STYLE_ID = "plotly.js-style-global"
_RULES = re.compile(r"""(?:"([^"]*)"|'([^']*)'|([A-Za-z_]\w*))\s*:\s*(?:"([^"]*)"|'([^']*)')""")


@cache
def plotly_css(bundle: Path) -> str:
    """The CSS rules plotly.js would inject, taken from its bundle's rule table ("X" is a plot, "Y" the
    notifier); an empty string when this bundle has none (nothing to inject then either)."""
    source = bundle.read_text(encoding="utf-8")
    start = source.find('{"X,X div":')
    if start < 0:
        return ""
    end = source.index("}", source.index('"Y .notifier-note"', start))
    rules = []
    for match in _RULES.finditer(source, start + 1, end):
        selector = next(g for g in match.groups()[:3] if g is not None)
        body = match.group(4) if match.group(4) is not None else match.group(5)
        selector = selector.replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        rules.append(f"{selector} {{{body}}}")
    return "\n".join(rules) + "\n"


_BUNDLED_STYLE = re.compile(
    r"""getElementById\("([0-9a-f]{64})"\)\)\{var (\w)=document\.createElement\("style"\);"""
    r"""\2\.id="\1",\2\.textContent='([^']*)'"""
)


@cache
def plotly_bundled_styles(bundle: Path) -> dict[str, str]:
    """Stylesheets a library inside the bundle (maplibre, in the full bundle) adds as a <style> element unless
    an element with its id exists: id -> CSS, served by views.plotly_css and linked with that id."""
    return {match.group(1): match.group(3) for match in _BUNDLED_STYLE.finditer(bundle.read_text(encoding="utf-8"))}


def _num(value) -> float | None:
    if value is None or value is HIDDEN:
        return None
    return float(value) if isinstance(value, Decimal | int | float) else None


def _layout(**extra) -> dict:
    layout = {
        "height": 340,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 50},
        "font": FONT,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "x unified",
        "xaxis": {"gridcolor": "#eef1f5"},
        "yaxis": {"gridcolor": "#eef1f5"},
    }
    layout.update(extra)
    return layout


def stacked_spend(name: str, over_time: dict, table: str) -> Chart:
    days = [day.isoformat() for day in over_time["days"]]
    traces = [
        {
            "type": "bar",
            "name": group,
            "x": days,
            "y": [_num(over_time["series"][group][day]) for day in over_time["days"]],
            "hovertemplate": "%{y:.2f} USD",
        }
        for group in over_time["groups"]
    ]
    layout = _layout(barmode="stack", yaxis={"title": {"text": "USD"}, "gridcolor": "#eef1f5"})
    return Chart(name, "Spend per day", {"data": traces, "layout": layout}, table)


def horizontal_bars(name: str, title: str, labels: list[str], series: dict[str, list], table: str, **axis) -> Chart:
    """One bar per label (and per series, grouped); labels read top to bottom in the given order."""
    traces = [
        {"type": "bar", "orientation": "h", "name": label, "y": labels[::-1], "x": [_num(v) for v in values[::-1]]}
        for label, values in series.items()
    ]
    height = max(200, 60 + 26 * len(labels) * max(1, len(series)))
    layout = _layout(
        barmode="group",
        height=min(height, 900),
        hovermode="closest",
        xaxis={"gridcolor": "#eef1f5", **axis},
        yaxis={"automargin": True},
        margin={"l": 10, "r": 20, "t": 10, "b": 40},
        showlegend=len(series) > 1,
    )
    return Chart(name, title, {"data": traces, "layout": layout}, table)


def lines(name: str, title: str, x: list[str], series: dict[str, list], table: str, **axis) -> Chart:
    traces = [
        {"type": "scatter", "mode": "lines+markers", "name": label, "x": x, "y": [_num(v) for v in values]}
        for label, values in series.items()
    ]
    layout = _layout(yaxis={"gridcolor": "#eef1f5", **axis})
    return Chart(name, title, {"data": traces, "layout": layout}, table)


def columns(name: str, title: str, x: list[str], series: dict[str, list], table: str, **axis) -> Chart:
    traces = [
        {"type": "bar", "name": label, "x": x, "y": [_num(v) for v in values]} for label, values in series.items()
    ]
    layout = _layout(barmode="group", hovermode="closest", yaxis={"gridcolor": "#eef1f5", **axis})
    return Chart(name, title, {"data": traces, "layout": layout}, table)


PERCENT_AXIS = {"tickformat": ".0%", "rangemode": "tozero"}
