"""The import contracts in pyproject.toml ([tool.importlinter], checked by `lint-imports` in CI) cover every
product module, and they refuse each import cycle the code once hid behind imports inside functions."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = {
    c["id"]: c for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
}
APPS = ("keys", "budgets", "adoption", "audit")
# Project plumbing that no app imports: it may import anything and nothing may need a layer rule for it.
UNLAYERED = {"govsite.settings", "govsite.apps", "govsite.asgi", "govsite.wsgi", "govsite.devtools"}


def _layers() -> list[set[str]]:
    """The layers contract, top first, each layer as the set of modules it names."""
    return [{m.strip() for m in line.replace("|", ":").split(":")} for line in CONTRACTS["layers"]["layers"]]


def _layer_of(module: str) -> int | None:
    found = [
        (len(name), index)
        for index, layer in enumerate(_layers())
        for name in layer
        if module == name or module.startswith(name + ".")
    ]
    return max(found)[1] if found else None


def _forbidden(importer: str, imported: str) -> bool:
    def within(module, names):
        return any(module == n or module.startswith(n + ".") for n in names)

    return any(
        c["type"] == "forbidden" and within(importer, c["source_modules"]) and within(imported, c["forbidden_modules"])
        for c in CONTRACTS.values()
    )


def _product_modules() -> list[str]:
    """Every top-level module of govsite and every module directly under an app (not deeper)."""
    names = [f"govsite.{m.name}" for m in pkgutil.iter_modules([str(ROOT / "govsite")])]
    for app in APPS:
        names += [f"{app}.{m.name}" for m in pkgutil.iter_modules([str(ROOT / app)]) if m.name != "migrations"]
    return sorted(n for n in names if n not in UNLAYERED)


def test_every_product_module_has_a_layer():
    assert [m for m in _product_modules() if _layer_of(m) is None] == []


def test_no_product_module_may_import_the_dev_tools():
    sources = CONTRACTS["devtools"]["source_modules"]
    missing = [
        m
        for m in [*_product_modules(), "govsite.settings", "govsite.apps", "govsite.asgi", "govsite.wsgi"]
        if not any(m == s or m.startswith(s + ".") for s in sources)
    ]
    assert missing == []
    assert CONTRACTS["devtools"]["forbidden_modules"] == ["govsite.devtools"]


# Imports that closed a cycle between apps before the layers were written down (each was hidden inside a
# function). Every one of them must now be refused: by a layer below importing a layer above, or by a
# forbidden contract.
ONCE_HIDDEN_CYCLES = [
    ("budgets.ingest", "adoption.rollups"),  # the ingest spliced adoption's rollup SQL into its own
    ("keys.selectors", "budgets.models"),  # the approval queue's team allocation
    ("keys.services", "audit.services"),
    ("keys.services", "audit.reports"),
    ("budgets.services", "audit.services"),  # ledger retention lived in audit
    ("govsite.accounts.permissions", "keys.models"),
    ("govsite.accounts.permissions", "budgets.models"),
    ("govsite.accounts.permissions", "govsite.api.models"),
    ("adoption.rollups", "audit.services"),
    ("audit.reports", "adoption.costs"),
    ("audit.chain", "keys.models"),
    ("govsite.gateway.client", "keys.models"),
    ("govsite.outbox", "keys.models"),
]


@pytest.mark.parametrize(("importer", "imported"), ONCE_HIDDEN_CYCLES)
def test_an_import_that_once_closed_a_cycle_is_refused(importer, imported):
    upward = _layer_of(imported) < _layer_of(importer)  # layers are listed top first
    assert upward or _forbidden(importer, imported), f"{importer} -> {imported} would be allowed again"


def test_the_foundation_is_at_the_bottom_and_the_pages_on_top():
    order = [_layer_of(m) for m in ("govsite.urls", "govsite.api", "adoption", "budgets", "keys", "govsite.accounts")]
    assert order == sorted(order)
    assert _layer_of("govsite.accounts") == _layer_of("govsite.gateway")
    assert _layer_of("audit.chain") > _layer_of("govsite.accounts")
