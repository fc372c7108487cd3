"""Plotly charts, rendered on the server into a <div> and a script; plotly.js is served by the site
itself (views.plotly_js), never from a CDN.

Figures are built as plain plotly figure dicts and rendered with `plotly.io.to_html(validate=False)`:
building `plotly.graph_objects.Figure` validates every property on every request (10–20 ms a chart),
which the dashboards cannot afford; the tests build a `Figure` from each dict, so an invalid property
still fails. Every chart has its numbers in a table under it (adoption.tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import plotly.io as pio

from adoption.tables import HIDDEN

CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
FONT = {"family": 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', "size": 12, "color": "#1d2430"}


@dataclass
class Chart:
    name: str
    title: str
    figure: dict
    table: str  # the name of the table holding its numbers

    @property
    def html(self) -> str:
        return pio.to_html(
            self.figure,
            full_html=False,
            include_plotlyjs=False,
            config=CONFIG,
            validate=False,
            default_width="100%",
            default_height=f"{self.figure['layout'].get('height', 340)}px",
            div_id=f"chart-{self.name}",
        )


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
