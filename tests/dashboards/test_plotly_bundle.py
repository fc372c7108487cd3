"""Lighter pages: the charts load plotly.js's basic distribution, vendored with its version and licence and served
by the site (compressed when the browser accepts it), and the charts use only trace types that bundle holds."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from adoption import charts

VENDOR = Path(settings.BASE_DIR) / "static" / "vendor" / "plotly"
BASIC_TRACES = {"scatter", "bar", "pie"}  # what plotly.js-basic-dist registers


def test_the_vendored_bundle_carries_its_version_and_licence():
    package = json.loads((VENDOR / "package.json").read_text())
    assert package["name"] == "plotly.js-basic-dist-min" and package["license"] == "MIT"
    header = (VENDOR / "plotly-basic.min.js").read_text()[:300]
    assert f"plotly.js (basic - minified) v{package['version']}" in header
    assert (
        "MIT" in (VENDOR / "LICENSE").read_text() or "Permission is hereby granted" in (VENDOR / "LICENSE").read_text()
    )


def test_the_charts_use_only_trace_types_of_the_basic_bundle():
    source = Path(charts.__file__).read_text()
    used = set(re.findall(r'"type":\s*"([a-z0-9]+)"', source))
    assert used and used <= BASIC_TRACES, used


@pytest.mark.django_db
def test_the_site_serves_the_basic_bundle_compressed(member_a_client):
    raw = (VENDOR / "plotly-basic.min.js").read_bytes()
    zipped = member_a_client.get(reverse("plotly_js"), HTTP_ACCEPT_ENCODING="gzip, br")
    assert zipped["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped["Vary"]
    assert gzip.decompress(zipped.content) == raw
    assert len(zipped.content) < 600_000  # what a cold page pays for the charts
    plain = member_a_client.get(reverse("plotly_js"))
    assert not plain.has_header("Content-Encoding") and b"".join(plain.streaming_content) == raw
