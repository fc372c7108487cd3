"""My usage: a person's own spend, keys and weekly activity."""

from __future__ import annotations

from adoption import charts
from adoption.charts import Chart
from adoption.costs import MyUsage
from adoption.pages.shared import COST, REQUESTS, budgets_table, models_table, spend_table, tools_table
from adoption.tables import Column, Table


def usage_tables(usage: MyUsage) -> list[Table]:
    return [
        spend_table(usage.over_time, "model"),
        models_table(usage.models, link=False),
        tools_table(usage.tools),
        Table(
            "keys",
            "Your keys",
            [
                Column("alias", "Key"),
                Column("team", "Team"),
                Column("status", "Status"),
                Column("issued", "Issued", "date"),
                Column("first_day", "First request", "date"),
                Column("last_day", "Last request", "date"),
                Column("requests", "Requests in the period", "int"),
                Column("cost", "Cost in the period (USD)", "money"),
            ],
            _key_rows(usage),
            empty="You have no keys yet.",
        ),
        Table(
            "activity",
            "Your activity by week",
            [
                Column("week", "Week from"),
                Column("active_days", "Active days", "int"),
                REQUESTS,
                COST,
            ],
            [
                {
                    "week": f"{week['monday']:%Y-%m-%d}",
                    "active_days": week["active_days"],
                    "requests": week["requests"],
                    "cost": week["cost"],
                }
                for week in usage.calendar["weeks"]
                if week["requests"]
            ],
            note="The numbers of the calendar above for the weeks you used a key, of the last 26 ISO weeks "
            "(Monday to Sunday, UTC), all your keys; weeks without a request are left out.",
            empty="No request in the last 26 weeks.",
        ),
        budgets_table(usage.budgets, team_links=False),
    ]


def _key_rows(usage: MyUsage) -> list[dict]:
    spent = {row["key_id"]: row for row in usage.key_rows}
    rows = []
    for key in usage.keys:
        row = spent.get(key.pk, {})
        rows.append(
            {
                "alias": key.alias,
                "team": key.team.name,
                "status": key.get_status_display(),
                "issued": (key.provisioned_at or key.created_at).date(),
                "first_day": key.first_day,
                "last_day": key.last_day,
                "requests": row.get("requests", 0),
                "cost": row.get("cost", 0),
            }
        )
    return rows


def usage_charts(usage: MyUsage) -> dict[str, Chart]:
    return {"spend": charts.stacked_spend("spend", usage.over_time, "spend_over_time")}
