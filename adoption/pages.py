"""What each page shows, from its selector's result: the tables (also its CSV downloads) and the charts
drawn from the same numbers. Charts are built only when the page itself is rendered."""

from __future__ import annotations

from django.template.defaultfilters import pluralize
from django.urls import reverse

from adoption import charts
from adoption.charts import PERCENT_AXIS, Chart
from adoption.costs import CostDashboard, ModelDashboard, MyUsage
from adoption.models import LATENCY_BOUNDS_MS
from adoption.selectors import (
    ACTIVATION_BUCKETS,
    COHORT_OFFSETS,
    DEFINITIONS,
    REPEAT_DAYS,
    REPEAT_MIN_DAYS,
    UNUSED_DAYS,
    AdoptionReport,
    GroupAdoption,
)
from adoption.tables import HIDDEN, Column, Table, millis

BUCKET_LABELS = [label for label, _, _ in ACTIVATION_BUCKETS]


def _team_link(row: dict) -> str | None:
    return reverse("dashboard_team", args=[row["slug"]]) if row.get("slug") else None


def _model_link(row: dict) -> str | None:
    return reverse("dashboard_model", args=[row["model"]]) if row.get("model") else None


# --- cost dashboards -----------------------------------------------------------------------------------------


def spend_table(over_time: dict, by_label: str) -> Table:
    columns = [Column("day", "Day", "date")]
    columns += [Column(f"g{index}", f"{group} (USD)", "money") for index, group in enumerate(over_time["groups"])]
    columns.append(Column("total", "Total (USD)", "money"))
    rows = []
    for day in over_time["days"]:
        row = {"day": day}
        for index, group in enumerate(over_time["groups"]):
            row[f"g{index}"] = over_time["series"][group][day]
        row["total"] = sum(over_time["series"][group][day] for group in over_time["groups"])
        rows.append(row)
    return Table(
        "spend_over_time",
        f"Spend per day by {by_label}",
        columns,
        rows,
        note=f"The ten {by_label}s that cost most in the period; the rest are added up as Other.",
    )


def models_table(models: list[dict], *, link: bool) -> Table:
    return Table(
        "models",
        "Models",
        [
            Column("model", "Model", link=_model_link if link else None),
            Column("requests", "Requests", "int"),
            Column("tokens", "Tokens", "int"),
            Column("cost", "Cost (USD)", "money"),
            Column("errors", "Errors", "int"),
            Column("error_rate", "Error rate", "percent"),
            Column("unpriced", "Unpriced requests", "int"),
            Column("flat_rate", "Flat-rate requests", "int"),
        ],
        models,
        note="Error rate: requests that failed (any reason, refusals included) ÷ requests.",
    )


def tools_table(tools: list[dict]) -> Table:
    return Table(
        "tools",
        "Client tools",
        [
            Column("tool", "Tool"),
            Column("requests", "Requests", "int"),
            Column("tokens", "Tokens", "int"),
            Column("cost", "Cost (USD)", "money"),
        ],
        tools,
        note="The coding agent or SDK that made the call, from its User-Agent.",
    )


def teams_table(teams: list[dict]) -> Table:
    return Table(
        "teams",
        "Teams",
        [
            Column("team", "Team", link=_team_link),
            Column("requests", "Requests", "int"),
            Column("people", "Active people", "int"),
            Column("cost", "Cost (USD)", "money"),
            Column("cost_per_person", "Cost per active person (USD)", "money"),
            Column("error_rate", "Error rate", "percent"),
            Column("refusals_rate_limit", "Rate-limit refusals (429)", "int"),
            Column("refusals_budget", "Budget refusals", "int"),
            Column("unpriced", "Unpriced requests", "int"),
        ],
        teams,
        note=(
            "Active people: people with at least one request through one of their personal keys of the team in "
            "the period (service keys are not a person). Refusals per key are on each team's page."
        ),
    )


def people_table(people: list[dict]) -> Table:
    return Table(
        "people",
        "Cost per person",
        [
            Column("person", "Person"),
            Column("email", "Email"),
            Column("requests", "Requests", "int"),
            Column("tokens", "Tokens", "int"),
            Column("cost", "Cost (USD)", "money"),
            Column("unpriced", "Unpriced requests", "int"),
            Column("refusals_rate_limit", "Rate-limit refusals (429)", "int"),
            Column("refusals_budget", "Budget refusals", "int"),
        ],
        people,
        note="For the team's approvers, finance, admins and auditors: in alphabetical order, not a ranking.",
    )


def refusals_table(refusals: list[dict]) -> Table:
    return Table(
        "refusals",
        "Refusals per key",
        [
            Column("team", "Team"),
            Column("key", "Key"),
            Column("owner", "Owner"),
            Column("requests", "Requests", "int"),
            Column("refusals_rate_limit", "Rate-limit refusals (429)", "int"),
            Column("refusals_budget", "Budget refusals", "int"),
            Column("refused_share", "Share refused", "percent"),
            Column("rpm_limit", "Requests/min limit", "int"),
            Column("max_budget", "Key budget (USD)", "money"),
        ],
        refusals,
        note=(
            "Keys the gateway refused for their rate limit (they may need higher limits) or their budget "
            "(a runaway, or a budget too small). Only keys with refusals in the period."
        ),
        empty="No key was refused in this period.",
    )


def latency_table(latency: list[dict]) -> Table:
    return Table(
        "latency",
        "Latency by model",
        [
            Column("model", "Model"),
            Column("requests", "Successful requests", "int"),
            Column("p50", "p50 latency (at most)", "ms"),
            Column("p95", "p95 latency (at most)", "ms"),
        ],
        latency,
        note=(
            "Latency of successful requests as the gateway logged it, across all teams (it is the provider's, "
            "not a team's). Read from a histogram: each figure is the upper end of the bucket holding it."
        ),
    )


def tags_table(tags: list[dict]) -> Table:
    return Table(
        "tags",
        "Cost by request tag",
        [
            Column("tag_key", "Tag"),
            Column("tag_value", "Value"),
            Column("requests", "Requests", "int"),
            Column("cost", "Cost (USD)", "money"),
            Column("unpriced", "Unpriced requests", "int"),
        ],
        tags,
        note=(
            "Tags the caller sent with the request (`project:atlas` is tag “project”, value “atlas”; a tag "
            "without a colon is listed under “tag”). A request with several tags counts under each."
        ),
        empty="No tagged requests in this period.",
    )


def budgets_table(budgets: list[dict]) -> Table:
    return Table(
        "budgets",
        "Budgets",
        [
            Column("scope", "Budget", link=_team_link),
            Column("period", "Period"),
            Column("spend", "Spent (USD)", "money"),
            Column("amount", "Budget (USD)", "money"),
            Column("used", "Used", "percent"),
            Column("projected", "Projected at period end (USD)", "money"),
            Column("projected_used", "Projected use", "percent"),
            Column("reaches_100", "Reaches 100% on", "date"),
        ],
        budgets,
        note=(
            "This period's spend from the ledger. Projected: the spend so far continued at its average daily "
            "rate to the period's end."
        ),
        empty="No budget to show.",
    )


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
            [Column("range", "Latency"), Column("requests", "Requests", "int")],
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


# --- my usage --------------------------------------------------------------------------------------------------


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
                Column("requests", "Requests", "int"),
                Column("cost", "Cost (USD)", "money"),
            ],
            [
                {
                    "week": f"{week['monday']:%Y-%m-%d}",
                    "active_days": week["active_days"],
                    "requests": week["requests"],
                    "cost": week["cost"],
                }
                for week in usage.calendar["weeks"]
            ],
            note="The numbers of the calendar above: the last 26 ISO weeks (Monday to Sunday, UTC), all your keys.",
        ),
        budgets_table(usage.budgets),
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


# --- adoption ---------------------------------------------------------------------------------------------------


def _groups(report: AdoptionReport) -> list[GroupAdoption]:
    return ([report.org] if report.org else []) + report.teams


def _group_link(group: GroupAdoption) -> str | None:
    return reverse("adoption_team", args=[group.team.slug]) if group.team else None


def group_row(group: GroupAdoption) -> dict:
    """One team's (or the org's) headline adoption figures: the summary table's row, and the API's."""
    return {
        "name": group.name,
        "people": group.people_now,
        "weekly_active": group.last_week.rate,
        "retention": group.last_week.retention,
        "repeat": group.repeat_share,
        "tools": group.tools_per_person,
        "median_days": group.keys["median_days"],
        "zombie": group.keys["zombie"],
        "unused": group.keys["unused"],
    }


def adoption_tables(report: AdoptionReport, *, single: bool) -> list[Table]:
    groups = _groups(report)
    tables = []
    if not single:
        tables.append(
            Table(
                "summary",
                "Teams",
                [
                    Column("name", "Team", link=lambda row: row["link"]),
                    Column("people", "People", "int"),
                    Column("weekly_active", f"Weekly-active ({report.weeks[-1].label})", "percent"),
                    Column("retention", f"Retention ({report.weeks[-1].label})", "percent"),
                    Column("repeat", "Repeat use", "percent"),
                    Column("tools", "Tools per active person", "number"),
                    Column("median_days", "Median days to first request", "number"),
                    Column("zombie", "Zombie keys", "int"),
                    Column("unused", f"Keys unused {UNUSED_DAYS} days", "int"),
                ],
                [group_row(group) | {"link": _group_link(group)} for group in groups],
                note="The report's last week; each column's definition is below.",
            )
        )
    if single:
        group = groups[0]
        tables.append(
            Table(
                "weekly",
                "Week by week",
                [
                    Column("week", "ISO week"),
                    Column("people", "People in the team", "int"),
                    Column("active", "Active", "int"),
                    Column("rate", "Weekly-active rate", "percent"),
                    Column("retention_base", "Active the week before", "int"),
                    Column("retained", "…and active this week", "int"),
                    Column("retention", "Retention", "percent"),
                ],
                [
                    {
                        "week": figures.week.label,
                        "people": figures.people,
                        "active": figures.active if figures.rate is not HIDDEN else HIDDEN,
                        "rate": figures.rate,
                        "retention_base": figures.retention_base if figures.retention is not HIDDEN else HIDDEN,
                        "retained": figures.retained if figures.retention is not HIDDEN else HIDDEN,
                        "retention": figures.retention,
                    }
                    for figures in group.weeks
                ],
                note=DEFINITIONS["weekly_active"] + " " + DEFINITIONS["retention"],
            )
        )
    else:
        tables.append(_wide_weeks("weekly_active", "Weekly-active rate", report, lambda f: f.rate))
        tables.append(_wide_weeks("retention", "Retention", report, lambda f: f.retention))
    cohort_group = groups[0]
    tables.append(
        Table(
            "cohorts",
            f"Cohorts by week of first use — {cohort_group.name}",
            [Column("week", "First used in"), Column("size", "People", "int")]
            + [Column(f"w{offset}", f"{offset} week{pluralize(offset)} later", "percent") for offset in COHORT_OFFSETS],
            [
                {
                    "week": row.week.label,
                    "size": row.size if row.shown else HIDDEN,
                    **{f"w{offset}": (row.shares[offset] if row.shown else HIDDEN) for offset in COHORT_OFFSETS},
                }
                for row in cohort_group.cohorts
            ],
            note=DEFINITIONS["cohorts"],
        )
    )
    tables.append(
        Table(
            "repeat",
            "Repeat use",
            [
                Column("name", "Team"),
                Column("people", "People in the team", "int"),
                Column("repeat", f"Active on {REPEAT_MIN_DAYS}+ of the last {REPEAT_DAYS} days", "int"),
                Column("share", "Share", "percent"),
            ],
            [
                {
                    "name": group.name,
                    "people": group.repeat_people,
                    "repeat": group.repeat_users if group.repeat_share is not HIDDEN else HIDDEN,
                    "share": group.repeat_share,
                }
                for group in groups
            ],
            note=DEFINITIONS["repeat"],
        )
    )
    tool_labels = list(groups[0].tool_mix) if groups else []
    tables.append(
        Table(
            "tools",
            "Tools per person and the mix of tools",
            [Column("name", "Team"), Column("per_person", "Tools per active person", "number")]
            + [Column(f"t{index}", f"Use {label}", "percent") for index, label in enumerate(tool_labels)],
            [
                {
                    "name": group.name,
                    "per_person": group.tools_per_person,
                    **{f"t{index}": group.tool_mix[label] for index, label in enumerate(tool_labels)},
                }
                for group in groups
            ],
            note=DEFINITIONS["tools"],
        )
    )
    tables.append(
        Table(
            "activation",
            "Activation and unused keys",
            [
                Column("name", "Team"),
                Column("issued", "Keys issued in the report", "int"),
                *[Column(f"b{index}", f"First request {label}", "int") for index, label in enumerate(BUCKET_LABELS)],
                Column("never", "Not used yet", "int"),
                Column("median_days", "Median days to first request", "number"),
                Column("live", "Live keys", "int"),
                Column("zombie", "Zombie keys (never used)", "int"),
                Column("unused", f"Unused for {UNUSED_DAYS} days", "int"),
            ],
            [
                {
                    "name": group.name,
                    "issued": group.keys["issued"],
                    **{f"b{index}": group.keys["buckets"][label] for index, label in enumerate(BUCKET_LABELS)},
                    "never": group.keys["never"],
                    "median_days": group.keys["median_days"],
                    "live": group.keys["live"],
                    "zombie": group.keys["zombie"],
                    "unused": group.keys["unused"],
                }
                for group in groups
            ],
            note=DEFINITIONS["activation"],
        )
    )
    return tables


def _wide_weeks(name: str, title: str, report: AdoptionReport, value) -> Table:
    groups = _groups(report)
    columns = [Column("week", "ISO week")] + [
        Column(f"g{index}", group.name, "percent") for index, group in enumerate(groups)
    ]
    rows = []
    for position, week in enumerate(report.weeks):
        row = {"week": week.label}
        for index, group in enumerate(groups):
            row[f"g{index}"] = value(group.weeks[position])
        rows.append(row)
    return Table(name, title, columns, rows, note=DEFINITIONS[name])


def adoption_charts(report: AdoptionReport, tables: dict[str, Table], *, single: bool) -> dict[str, Chart]:
    groups = _groups(report)
    weeks = [week.label for week in report.weeks]
    if single:
        weekly = {
            "Weekly-active rate": [figures.rate for figures in groups[0].weeks],
            "Retention": [figures.retention for figures in groups[0].weeks],
        }
        trend = charts.lines("weekly", "Weekly-active rate and retention", weeks, weekly, "weekly", **PERCENT_AXIS)
        result = [trend]
    else:
        result = [
            charts.lines(
                "weekly_active",
                "Weekly-active rate",
                weeks,
                {group.name: [figures.rate for figures in group.weeks] for group in groups},
                "weekly_active",
                **PERCENT_AXIS,
            ),
            charts.lines(
                "retention",
                "Retention",
                weeks,
                {group.name: [figures.retention for figures in group.weeks] for group in groups},
                "retention",
                **PERCENT_AXIS,
            ),
        ]
    tool_labels = list(groups[0].tool_mix) if groups else []
    result.append(
        charts.columns(
            "tools",
            "Share of active people using each tool",
            tool_labels,
            {group.name: [group.tool_mix[label] for label in tool_labels] for group in groups},
            "tools",
            **PERCENT_AXIS,
        )
    )
    result.append(
        charts.columns(
            "activation",
            "Days from a key being issued to its first request",
            [*BUCKET_LABELS, "not used yet"],
            {group.name: [*group.keys["buckets"].values(), group.keys["never"]] for group in groups},
            "activation",
        )
    )
    return {chart.name: chart for chart in result}
