"""What each page shows, from its selector's result: the tables (also its CSV downloads) and the charts
drawn from the same numbers. Charts are built only when the page itself is rendered.

One module per page family (`costs`, `usage`, `adoption_report`); `shared` holds the tables several pages show.
"""

from adoption.pages.adoption_report import BUCKET_LABELS, adoption_charts, adoption_tables, group_row
from adoption.pages.costs import cost_charts, cost_tables, model_charts, model_tables
from adoption.pages.shared import (
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
from adoption.pages.usage import usage_charts, usage_tables

__all__ = [
    "BUCKET_LABELS",
    "adoption_charts",
    "adoption_tables",
    "budgets_table",
    "cost_charts",
    "cost_tables",
    "group_row",
    "latency_table",
    "model_charts",
    "model_tables",
    "models_table",
    "people_table",
    "refusals_table",
    "spend_table",
    "tags_table",
    "teams_table",
    "tools_table",
    "usage_charts",
    "usage_tables",
]
