"""On PostgreSQL an access review's snapshot rows and decisions are written once: UPDATE and DELETE raise.

(TRUNCATE is left alone: only a test database's flush uses it, and the audit table guards the history.)
"""

from django.db import migrations

TABLES = ("audit_accessreviewitem", "audit_accessreviewdecision")

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_review_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'access review snapshots and decisions are written once: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # params=None: the SQL is sent as written (its `%` is PL/pgSQL's, not a query placeholder).
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_write_once BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_review_refuse_change()",
            params=None,
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_write_once ON {table}", params=None)
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_review_refuse_change()", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_evidence_exports_samples_access_reviews")]
    operations = [migrations.RunPython(forward, backward)]
