"""No chart offers to send the company's data out (issue 19): no page or chart configuration holds plotly's
cloud-sharing button, its logo, or any URL outside the site; plotly's stylesheet is the site's own."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from adoption import charts
from adoption.views import PLOTLY_JS
from tests.dashboards.test_pages import _pages

pytestmark = pytest.mark.django_db

FIGURE = re.compile(r'<script type="application/json" id="chart-([\w-]+)-figure">(.*?)</script>', re.S)
URL = re.compile(r"(?:https?:)?//[\w.-]+", re.I)
CLOUD = ("sendChartToCloud", "sendDataToCloud", "editInChartStudio", "plotly.com", "plot.ly", "chart-studio")


def _strings(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_the_chart_configuration_has_two_buttons_no_cloud_no_logo_no_outside_host():
    assert charts.CONFIG["modeBarButtons"] == [["toImage", "resetScale2d"]]  # download and reset, nothing else
    assert charts.CONFIG["displaylogo"] is False
    assert charts.CONFIG["showSendToCloud"] is False and charts.CONFIG["showEditInChartStudio"] is False
    assert charts.CONFIG["plotlyServerURL"] == ""  # plotly.js's default is Plotly Cloud's address
    for text in _strings(charts.CONFIG):
        assert not URL.search(text), text


def test_no_page_with_charts_holds_a_cloud_button_or_a_url_outside_the_site(cost_world, admin_client):
    figures = 0
    for url in _pages(cost_world):
        page = admin_client.get(url).content.decode()
        for word in CLOUD:
            assert word not in page, f"{url}: {word}"
        for attribute in re.findall(r'(?:href|src|action)="([^"]*)"', page):
            assert not URL.match(attribute), f"{url} links outside the site: {attribute}"
        for name, spec in FIGURE.findall(page):
            figure = json.loads(spec)
            figures += 1
            assert figure["config"] == charts.CONFIG, name
            for text in _strings(figure):
                assert not URL.search(text), f"{url} chart {name}: {text}"
        assert "<script>" not in page  # nothing inline: the figures are data, drawn by static/js/charts.js
    assert figures >= len(_pages(cost_world))  # every page had at least one chart to check


def test_each_chart_names_its_caption_and_its_table(cost_world, admin_client):
    response = admin_client.get(f"{reverse('dashboard_org')}?{cost_world.query}")
    page = response.content.decode()
    for chart in response.context["charts"].values():
        assert f'<span id="caption-{chart.name}">{chart.title}</span>' in page
        assert f'data-caption="caption-{chart.name}" data-table="table-{chart.table}"' in page
        assert f'id="table-{chart.table}"' in page  # the table that describes it exists


def test_plotly_stylesheet_is_served_by_the_site_with_the_rules_plotly_would_inject(member_a_client):
    response = member_a_client.get(reverse("plotly_css"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    css = response.content.decode()
    assert ".js-plotly-plot .plotly .modebar {position:absolute;" in css
    assert ".js-plotly-plot .plotly .main-svg {position:absolute;" in css
    assert not re.search(r"(^|,)[XY][ ,:.{]", css, re.M)  # every placeholder of plotly's rule table replaced
    for style_id in charts.plotly_bundled_styles(PLOTLY_JS):
        part = member_a_client.get(reverse("plotly_css"), {"part": style_id})
        assert part.status_code == 200 and part.content
    assert member_a_client.get(reverse("plotly_css"), {"part": "nope"}).status_code == 404
