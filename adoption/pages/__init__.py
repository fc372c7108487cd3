"""What each page shows, from its selector's result: the tables (also its CSV downloads) and the charts
drawn from the same numbers. Charts are built only when the page itself is rendered.

One module per page family (`costs`, `usage`, `adoption_report`); `shared` holds the tables several pages show.
"""

from adoption.pages.adoption_report import adoption_charts, adoption_tables, group_row, hidden_groups
from adoption.pages.costs import cost_charts, cost_tables, model_charts, model_tables
from adoption.pages.usage import usage_charts, usage_tables

__all__ = [
    "adoption_charts",
    "adoption_tables",
    "cost_charts",
    "cost_tables",
    "group_row",
    "hidden_groups",
    "model_charts",
    "model_tables",
    "usage_charts",
    "usage_tables",
]
