"""Fixtures of the operators' views: the JSON log output as written, a closed port."""

from __future__ import annotations

import io
import json
import logging

import pytest

from govsite.devtools.processes import free_port
from govsite.logs import json_formatter

# The key-lifecycle fixtures (the sandbox-backed gateway, models), shared.
from tests.keys.conftest import live_gateway, open_model  # noqa: F401


class JsonLog:
    """What govsite's JSON formatter writes, line by line, while the fixture is active."""

    def __init__(self):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(json_formatter())
        self.handler.setLevel(logging.DEBUG)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        """Every line, parsed: a line that is not one JSON object fails the test here."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def json_log():
    log = JsonLog()
    root = logging.getLogger()
    level = root.level
    root.addHandler(log.handler)
    root.setLevel(logging.DEBUG)
    yield log
    root.removeHandler(log.handler)
    root.setLevel(level)


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (taken free, then released): connecting to it is refused."""
    return free_port()
