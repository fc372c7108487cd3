"""The cost dashboards (the org's, a team's) and a model's page: their tables and charts."""

from __future__ import annotations

from adoption import charts
from adoption.charts import Chart
from adoption.costs import CostDashboard, ModelDashboard
from adoption.models import LATENCY_BOUNDS_MS
from adoption.pages.shared import (
    REQUESTS,
    budgets_table,
    latency_table,
    models_table,
    people_table,
    refusals_table,
    spend_table,
    tags_table,
    teams_table,
    tools_table,
)
from adoption.tables import Column, Table, millis


def cost_tables(dashboard: CostDashboard, *, link_models: bool, one_team: bool) -> list[Table]:
    tables = [
        spend_table(dashboard.over_time, "team" if dashboard.stack == "team" else "model"),
        budgets_table(dashboard.budgets),
        models_table(dashboard.models, link=link_models),
    ]
    if not one_team:
        tables.append(teams_table(dashboard.teams))
    if dashboard.people is not None:
        tables.append(people_table(dashboard.people))
    tables += [tools_table(dashboard.tools), latency_table(dashboard.latency), tags_table(dashboard.tags)]
    if dashboard.refusals is not None:
        tables.append(refusals_table(dashboard.refusals))
    return tables


def cost_charts(dashboard: CostDashboard, *, one_team: bool) -> dict[str, Chart]:
    models = dashboard.models[:15]
    model_names = [row["model"] or "(no model)" for row in models]
    teams = dashboard.teams
    team_names = [row["team"] for row in teams]
    tags = sorted(dashboard.tags, key=lambda row: -(row["cost"] or 0))[:15]
    budgets = [row for row in dashboard.budgets if row["amount"]]
    result = [
        charts.stacked_spend("spend", dashboard.over_time, "spend_over_time"),
        charts.horizontal_bars(
            "budgets",
            "Budget used and projected",
            [row["scope"] for row in budgets],
            {
                "Used": [row["used"] for row in budgets],
                "Projected at period end": [row["projected_used"] for row in budgets],
            },
            "budgets",
            tickformat=".0%",
            rangemode="tozero",  # nothing spent yet draws from 0%, not around it
        ),
        charts.horizontal_bars(
            "models", "Cost by model (USD)", model_names, {"Cost": [row["cost"] for row in models]}, "models"
        ),
        charts.horizontal_bars(
            "errors",
            "Error rate by model",
            model_names,
            {"Error rate": [row["error_rate"] for row in models]},
            "models",
            tickformat=".1%",
        ),
        charts.horizontal_bars(
            "latency",
            "Latency by model (ms)",
            [row["model"] for row in dashboard.latency],
            {"p50": [row["p50"] for row in dashboard.latency], "p95": [row["p95"] for row in dashboard.latency]},
            "latency",
        ),
        charts.horizontal_bars(
            "tags",
            "Cost by request tag (USD)",
            [f"{row['tag_key']}: {row['tag_value']}" for row in tags],
            {"Cost": [row["cost"] for row in tags]},
            "tags",
        ),
    ]
    if not one_team:
        result += [
            charts.horizontal_bars(
                "per_person",
                "Cost per active person (USD)",
                team_names,
                {"Cost per active person": [row["cost_per_person"] for row in teams]},
                "teams",
            ),
            charts.horizontal_bars(
                "team_refusals",
                "Refusals per team",
                team_names,
                {
                    "Rate limit (429)": [row["refusals_rate_limit"] for row in teams],
                    "Budget": [row["refusals_budget"] for row in teams],
                },
                "teams",
            ),
        ]
    return {chart.name: chart for chart in result}


def model_tables(dashboard: ModelDashboard) -> list[Table]:
    buckets = dashboard.latency["buckets"] if dashboard.latency else {}
    histogram = [
        {"range": _bucket_label(index), "requests": buckets.get(index, 0)}
        for index in range(len(LATENCY_BOUNDS_MS) + 1)
        if buckets.get(index)
    ]
    return [
        spend_table(dashboard.over_time, "team"),
        teams_table(dashboard.teams),
        Table(
            "latency_histogram",
            "Latency of successful requests",
            [Column("range", "Latency"), REQUESTS],
            histogram,
            note="How many successful requests took how long (the gateway's request duration).",
        ),
    ]


def _bucket_label(index: int) -> str:
    low = LATENCY_BOUNDS_MS[index - 1] if index else 0
    if index >= len(LATENCY_BOUNDS_MS):
        return f"{millis(low)} or more"
    return f"{millis(low)} – {millis(LATENCY_BOUNDS_MS[index])}"


def model_charts(dashboard: ModelDashboard, tables: dict[str, Table]) -> dict[str, Chart]:
    histogram = tables["latency_histogram"].rows
    result = [
        charts.stacked_spend("spend", dashboard.over_time, "spend_over_time"),
        charts.columns(
            "latency",
            "Latency of successful requests",
            [row["range"] for row in histogram],
            {"Requests": [row["requests"] for row in histogram]},
            "latency_histogram",
        ),
    ]
    return {chart.name: chart for chart in result}
