"""The rollups' generation (budgets.generation): one row, changed by a trigger at the end of every statement that
writes DailyRollup (adoption adds its rollups' triggers), so figures computed from the rollups can be kept until
the rollups change. The number comes from a sequence, so a value is never given twice, even after a rollback; the
epoch is random per database, so two databases (a test database made again) never share a key. PostgreSQL only:
SQLite (the demo) keeps no figures.
"""

from django.db import migrations

CREATE = """
CREATE SEQUENCE govsite_rollup_generation_seq;
CREATE TABLE govsite_rollup_generation (
    id smallint PRIMARY KEY CHECK (id = 1),
    epoch uuid NOT NULL DEFAULT gen_random_uuid(),
    generation bigint NOT NULL
);
INSERT INTO govsite_rollup_generation (id, generation) VALUES (1, nextval('govsite_rollup_generation_seq'));

CREATE FUNCTION govsite_rollup_generation_bump() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
    INSERT INTO govsite_rollup_generation (id, generation) VALUES (1, nextval('govsite_rollup_generation_seq'))
    ON CONFLICT (id) DO UPDATE SET generation = EXCLUDED.generation;
    RETURN NULL;
END $fn$;
REVOKE ALL ON FUNCTION govsite_rollup_generation_bump() FROM PUBLIC;

CREATE TRIGGER govsite_rollup_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON budgets_dailyrollup
    FOR EACH STATEMENT EXECUTE FUNCTION govsite_rollup_generation_bump();
"""

DROP = """
DROP TRIGGER IF EXISTS govsite_rollup_generation ON budgets_dailyrollup;
DROP FUNCTION IF EXISTS govsite_rollup_generation_bump();
DROP TABLE IF EXISTS govsite_rollup_generation;
DROP SEQUENCE IF EXISTS govsite_rollup_generation_seq;
"""


def _run(schema_editor, sql: str) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql)


def create(apps, schema_editor):
    _run(schema_editor, CREATE)


def drop(apps, schema_editor):
    _run(schema_editor, DROP)


class Migration(migrations.Migration):
    dependencies = [("budgets", "0009_increase_of_one_keys_cap")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
