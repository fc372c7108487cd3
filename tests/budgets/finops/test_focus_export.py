"""The ledger in FOCUS 1.2: a seeded month with every cost source passes the FinOps Foundation's validator
(CSV and Parquet), its effective cost is the ledger's, and unpriced rows are null and tagged, never $0."""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from budgets.finops import exports, selectors
from budgets.models import CostSource, FocusExport
from tests.budgets.finops.seed import MONTH, seed_month
from tests.budgets.finops.validator import OR_BRANCHES, focus_validate

pytestmark = pytest.mark.django_db
END = date(2026, 2, 28)
NOT_NULL_COSTS = ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost")


def _csv_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_strict_export_of_a_seeded_month_passes_focus_validator_1_2(tmp_path, fmt):
    seed_month()
    out = tmp_path / f"focus.{fmt}"
    totals = exports.focus_write(start=MONTH, end=END, fmt=fmt, out=out, strict=True)
    assert totals.sources == set(CostSource.values)  # every cost source is in the month
    assert totals.left_out == 1  # the unpriced group is left out of a strict file, and counted
    verdict = focus_validate(out)
    assert verdict.conforms() == []
    assert verdict.passed > 100


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_default_export_keeps_unpriced_rows_null_and_breaks_only_focus_rules_against_null_costs(tmp_path, fmt):
    """FOCUS requires a cost on every row; govsite never books an unpriced request at $0. The default file keeps
    them, null, so the validator's only complaints are the four cost columns' "MUST NOT be null", for that row."""
    seed_month()
    out = tmp_path / f"focus.{fmt}"
    exports.focus_write(start=MONTH, end=END, fmt=fmt, out=out)
    verdict = focus_validate(out)
    problems = verdict.conforms()
    assert problems, "the null costs of the unpriced row must be visible to the validator"
    for rule, (violations, message) in verdict.failures.items():
        if rule in OR_BRANCHES:
            continue
        assert rule.split("-")[0] in NOT_NULL_COSTS, (rule, message)
        assert violations == 1, (rule, violations)  # the one unpriced row
        assert "NULL" in message or "failed child rules" in message, (rule, message)


def test_effective_cost_equals_the_ledgers_and_unpriced_rows_are_null_and_tagged(tmp_path):
    seed_month()
    csv_out, parquet_out = tmp_path / "focus.csv", tmp_path / "focus.parquet"
    exports.focus_write(start=MONTH, end=END, fmt="csv", out=csv_out)
    exports.focus_write(start=MONTH, end=END, fmt="parquet", out=parquet_out)
    ledger = selectors.ledger_cost(MONTH, END)
    assert ledger == Decimal("0.0762")  # the seeded month: gateway, computed, $0 cache hit and flat rate
    rows = _csv_rows(csv_out)
    assert sum(Decimal(row["EffectiveCost"]) for row in rows if row["EffectiveCost"]) == ledger
    assert sum(Decimal(row["BilledCost"]) for row in rows if row["BilledCost"]) == ledger
    table = pq.read_table(parquet_out).to_pylist()
    assert sum(row["EffectiveCost"] for row in table if row["EffectiveCost"] is not None) == ledger
    assert sum(row["x_Requests"] for row in table) == 10  # every ledger row is in a FOCUS row

    (unpriced,) = [row for row in rows if row["x_CostSource"] == "unpriced"]
    for column in NOT_NULL_COSTS:
        assert unpriced[column] == ""  # null, never 0
    tags = json.loads(unpriced["Tags"])
    assert tags["govsite/unpriced_reason"] == "model-not-in-price-map"
    assert tags["govsite/cost_source"] == "unpriced"
    assert unpriced["x_Requests"] == "2" and unpriced["SkuId"] == "openai/acme-private"
    (parquet_unpriced,) = [row for row in table if row["x_CostSource"] == "unpriced"]
    assert all(parquet_unpriced[column] is None for column in NOT_NULL_COSTS)

    flat = next(row for row in rows if row["x_CostSource"] == "flat_rate")
    assert Decimal(flat["EffectiveCost"]) == 0 and flat["PricingCategory"] == "Other"


def test_allocation_is_in_focus_tags_and_request_tags_split_rows(tmp_path):
    platform_key, _research_key = seed_month()
    out = tmp_path / "focus.csv"
    exports.focus_write(start=MONTH, end=END, fmt="csv", out=out)
    rows = _csv_rows(out)
    day2 = [row for row in rows if row["ChargePeriodStart"] == "2026-02-02T00:00:00Z"]
    assert len(day2) == 2  # one with project:apollo, one untagged; LiteLLM's User-Agent tags are not a split
    tagged = next(row for row in day2 if "project" in json.loads(row["Tags"]))
    tags = json.loads(tagged["Tags"])
    assert tags["project"] == "apollo"
    assert tags["govsite/team"] == "platform" and tags["govsite/cost_centre"] == "CC-100"
    assert tags["govsite/owner"] == "ana@example.com" and tags["govsite/key"] == platform_key.alias
    assert tags["govsite/data_classification"] == "internal"
    assert (Decimal(tagged["EffectiveCost"]), tagged["x_Requests"]) == (Decimal("0.02"), "2")
    assert tagged["SubAccountName"] == "Platform" and tagged["ResourceName"] == platform_key.alias
    assert (
        tagged["BillingPeriodStart"] == "2026-02-01T00:00:00Z" and tagged["BillingPeriodEnd"] == "2026-03-01T00:00:00Z"
    )
    assert tagged["PricingUnit"] == "Tokens" and Decimal(tagged["PricingQuantity"]) == 60
    unmanaged = next(row for row in rows if row["SubAccountId"] == "team:none")
    assert json.loads(unmanaged["Tags"])["govsite/key"].startswith("unmanaged:")


def test_manage_py_export_focus_writes_the_file_reports_progress_and_is_audited(tmp_path, capsys):
    seed_month()
    out = tmp_path / "february.parquet"
    call_command("export_focus", "--from", "2026-02-01", "--to", "2026-02-28", "--out", str(out))
    captured = capsys.readouterr()
    assert "10/10 ledger rows (100%)" in captured.err
    assert "effective cost 0.076200000 USD" in captured.out
    assert "1 unpriced rows (null cost, tagged)" in captured.out
    export = FocusExport.objects.get()
    assert (export.status, export.focus_rows, export.ledger_rows_done) == ("done", 8, 10)
    assert export.delivered_to == str(out) and len(export.sha256) == 64
    assert pq.read_table(out).num_rows == 8
    actions = list(
        AuditEvent.objects.filter(target_type="budgets.focusexport", target_id=str(export.pk))
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["focus_export.requested", "focus_export.built"]


def test_manage_py_export_focus_strict_leaves_the_unpriced_rows_out_and_says_so(tmp_path, capsys):
    seed_month()
    out = tmp_path / "february.csv"
    call_command("export_focus", "--from", "2026-02-01", "--to", "2026-02-28", "--out", str(out), "--strict")
    assert "1 unpriced rows (left out: --strict)" in capsys.readouterr().out
    rows = _csv_rows(out)
    assert len(rows) == 7 and all(row["EffectiveCost"] != "" for row in rows)
    assert FocusExport.objects.get().unpriced_left_out == 1


def test_manage_py_export_focus_refuses_a_reversed_period(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="ends before it starts"):
        call_command("export_focus", "--from", "2026-02-10", "--to", "2026-02-01", "--out", str(tmp_path / "x.csv"))
    assert not FocusExport.objects.exists()
