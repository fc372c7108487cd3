"""The ledger (budgets_spendrecord) becomes a table partitioned by month on PostgreSQL, every row kept.

Its unique key becomes (request_id, time): a partitioned table's keys must hold the partition key (see
budgets.partitions for how a request stays booked once). The model's state is unchanged (Django still
reads request_id as the primary key). The rollups are other tables and are not touched, so every figure
stays. SQLite keeps the plain table. On a large ledger this copies every row in one transaction: run it
in a maintenance window.
"""

from datetime import UTC, datetime

from django.db import migrations

LEDGER = "budgets_spendrecord"
OLD = "budgets_spendrecord_unpartitioned"


def _months_with_rows(cursor, table):
    cursor.execute(f"SELECT DISTINCT date_trunc('month', time AT TIME ZONE 'UTC')::date FROM {table}")  # noqa: S608
    return [month for (month,) in cursor.fetchall()]


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from budgets.partitions import DEFAULT, Month, create_month_sql  # noqa: PLC0415 - the same SQL the job runs

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {LEDGER} RENAME TO {OLD}")
        cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT {LEDGER}_pkey TO {OLD}_pkey")
        cursor.execute("DROP INDEX IF EXISTS spend_time, spend_key_time")
        cursor.execute(
            f"CREATE TABLE {LEDGER} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (time)"
        )
        cursor.execute(f"ALTER TABLE {LEDGER} ADD CONSTRAINT {LEDGER}_pkey PRIMARY KEY (request_id, time)")
        cursor.execute(f'CREATE INDEX spend_time ON {LEDGER} ("time")')
        cursor.execute(f'CREATE INDEX spend_key_time ON {LEDGER} (key_id, "time")')
        cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {LEDGER} DEFAULT")
        wanted = {Month.of(month) for month in _months_with_rows(cursor, OLD)}
        current = Month.of(datetime.now(UTC))
        wanted.update(current.shifted(offset) for offset in range(4))
        for month in sorted(wanted, key=lambda m: m.start):
            cursor.execute(create_month_sql(month))
        cursor.execute(f"INSERT INTO {LEDGER} SELECT * FROM {OLD}")  # noqa: S608
        cursor.execute(f"DROP TABLE {OLD}")


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {LEDGER} RENAME TO {OLD}")
        cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT {LEDGER}_pkey TO {OLD}_pkey")
        cursor.execute("DROP INDEX IF EXISTS spend_time, spend_key_time")
        cursor.execute(f"CREATE TABLE {LEDGER} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(f"ALTER TABLE {LEDGER} ADD CONSTRAINT {LEDGER}_pkey PRIMARY KEY (request_id)")
        cursor.execute(f'CREATE INDEX spend_time ON {LEDGER} ("time")')
        cursor.execute(f'CREATE INDEX spend_key_time ON {LEDGER} (key_id, "time")')
        cursor.execute(f"INSERT INTO {LEDGER} SELECT * FROM {OLD} ORDER BY time ON CONFLICT DO NOTHING")  # noqa: S608
        cursor.execute(f"DROP TABLE {OLD}")


class Migration(migrations.Migration):
    atomic = True

    dependencies = [("budgets", "0006_finops_focus_exports_and_chargeback_closes")]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
