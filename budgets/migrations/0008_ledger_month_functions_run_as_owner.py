"""Two functions that change the ledger's partitions as their owner (SECURITY DEFINER), so the app's role, which
owns nothing (govsite.dbroles), can make next month's partition and drop a month retention let go, and nothing
more: it still cannot alter, truncate or drop any table itself. Each function builds its own statements from a
date (no SQL comes in), takes the partitions' advisory lock, and does nothing when there is nothing to do. The
drop refuses the current month and later ones. PostgreSQL only; SQLite keeps a plain ledger.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION govsite_ledger_month_create(month_start date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    first date := date_trunc('month', month_start)::date;
    part text := format('budgets_spendrecord_y%sm%s', to_char(first, 'YYYY'), to_char(first, 'MM'));
    low text := quote_literal(first::text || ' 00:00:00+00');
    high text := quote_literal((first + interval '1 month')::date::text || ' 00:00:00+00');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('budgets_spendrecord.partitions'));
    IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'budgets_spendrecord'::regclass AND c.relname = part) THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I (LIKE budgets_spendrecord INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   part);
    -- rows the default partition caught for this month move into it (the default may not keep them)
    EXECUTE format('WITH moved AS (DELETE FROM budgets_spendrecord_default WHERE time >= %s AND time < %s '
                   'RETURNING *) INSERT INTO %I SELECT * FROM moved', low, high, part);
    EXECUTE format('ALTER TABLE budgets_spendrecord ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                   part, low, high);
    RETURN true;
END $fn$;

CREATE OR REPLACE FUNCTION govsite_ledger_month_drop(month_start date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    first date := date_trunc('month', month_start)::date;
    part text := format('budgets_spendrecord_y%sm%s', to_char(first, 'YYYY'), to_char(first, 'MM'));
BEGIN
    IF first >= date_trunc('month', now() AT TIME ZONE 'UTC')::date THEN
        RAISE EXCEPTION 'the ledger''s current and future months are never dropped (%)', first;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('budgets_spendrecord.partitions'));
    IF NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = 'budgets_spendrecord'::regclass AND c.relname = part) THEN
        RETURN false;
    END IF;
    EXECUTE format('ALTER TABLE budgets_spendrecord DETACH PARTITION %I', part);
    EXECUTE format('DROP TABLE %I', part);
    RETURN true;
END $fn$;

-- only the roles given EXECUTE (the app's, by govsite.dbroles after every migrate) may call them
REVOKE ALL ON FUNCTION govsite_ledger_month_create(date) FROM PUBLIC;
REVOKE ALL ON FUNCTION govsite_ledger_month_drop(date) FROM PUBLIC;
"""

DROP = """
DROP FUNCTION IF EXISTS govsite_ledger_month_create(date);
DROP FUNCTION IF EXISTS govsite_ledger_month_drop(date);
"""


def _run(schema_editor, sql: str) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql)  # no parameters: the % of format() are PostgreSQL's


def create(apps, schema_editor):
    _run(schema_editor, CREATE)


def drop(apps, schema_editor):
    _run(schema_editor, DROP)


class Migration(migrations.Migration):
    dependencies = [("budgets", "0007_ledger_partitioned_by_month")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
