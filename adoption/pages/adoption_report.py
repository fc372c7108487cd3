"""The adoption report (the org's and a team's): weekly-active rate, retention, cohorts, repeat use, tools
and activation."""

from __future__ import annotations

from django.template.defaultfilters import pluralize
from django.urls import reverse

from adoption import charts
from adoption.charts import PERCENT_AXIS, Chart
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
from adoption.tables import HIDDEN, Column, Table

BUCKET_LABELS = [label for label, _, _ in ACTIVATION_BUCKETS]


def _groups(report: AdoptionReport, *, single: bool = False) -> list[GroupAdoption]:
    """The groups a page shows figures for: a team's own page its team; the org's page the org and the teams
    large enough to show (the others are named once, by `hidden_groups`, instead of a row of blanks each)."""
    groups = ([report.org] if report.org else []) + report.teams
    shown = [group for group in groups if group.shown]
    return groups if single or not shown else shown


def hidden_groups(report: AdoptionReport) -> list[str]:
    """The teams too small to show without identifying someone, listed once on the page."""
    return [group.name for group in report.teams if not group.shown]


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
    groups = _groups(report, single=single)
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
    groups = _groups(report, single=single)
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
