"""The tables more than one page shows (cost dashboards, a model's page, my usage), and their columns."""

from __future__ import annotations

from django.urls import reverse

from adoption.tables import Column, Table

# Columns several tables show, named once so they read (and download) the same everywhere.
REQUESTS = Column("requests", "Requests", "int")
TOKENS = Column("tokens", "Tokens", "int")
COST = Column("cost", "Cost (USD)", "money")
UNPRICED = Column("unpriced", "Unpriced requests", "int")
ERROR_RATE = Column("error_rate", "Error rate", "percent")
REFUSALS = (
    Column("refusals_rate_limit", "Rate-limit refusals (429)", "int"),
    Column("refusals_budget", "Budget refusals", "int"),
)


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
            REQUESTS,
            TOKENS,
            COST,
            Column("errors", "Errors", "int"),
            ERROR_RATE,
            UNPRICED,
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
            REQUESTS,
            TOKENS,
            COST,
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
            REQUESTS,
            Column("people", "Active people", "int"),
            COST,
            Column("cost_per_person", "Cost per active person (USD)", "money"),
            ERROR_RATE,
            *REFUSALS,
            UNPRICED,
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
            REQUESTS,
            TOKENS,
            COST,
            UNPRICED,
            *REFUSALS,
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
            REQUESTS,
            *REFUSALS,
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
            REQUESTS,
            COST,
            UNPRICED,
        ],
        tags,
        note=(
            "Tags the caller sent with the request (`project:atlas` is tag “project”, value “atlas”; a tag "
            "without a colon is listed under “tag”). A request with several tags counts under each."
        ),
        empty="No tagged requests in this period.",
    )


def budgets_table(budgets: list[dict], *, team_links: bool = True) -> Table:
    """`team_links=False` where the reader may not open the team's dashboard (a member's own usage page)."""
    return Table(
        "budgets",
        "Budgets",
        [
            Column("scope", "Budget", link=_team_link if team_links else None),
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
