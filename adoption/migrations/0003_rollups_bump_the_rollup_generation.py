"""Every statement that writes one of adoption's rollups bumps the rollups' generation (budgets migration 0010,
budgets.generation), as DailyRollup's writes do: figures kept for the dashboards are recomputed once the rollups
they came from change. PostgreSQL only.
"""

from django.db import migrations

ROLLUPS = ("PersonWeek", "KeyUse", "TeamModelDay", "TeamToolDay", "TagRollup", "LatencyRollup")


def _tables(apps) -> list[str]:
    return [apps.get_model("adoption", name)._meta.db_table for name in ROLLUPS]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in _tables(apps):
            cursor.execute(
                f"CREATE TRIGGER govsite_rollup_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION govsite_rollup_generation_bump()"
            )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in _tables(apps):
            cursor.execute(f"DROP TRIGGER IF EXISTS govsite_rollup_generation ON {table}")


class Migration(migrations.Migration):
    dependencies = [
        ("adoption", "0002_rollup_costs_nine_places"),
        ("budgets", "0010_rollup_generation_bumped_by_every_rollup_write"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
