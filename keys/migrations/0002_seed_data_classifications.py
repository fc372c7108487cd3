from django.db import migrations

LEVELS = [
    ("public", 1, "Public", "Published or publishable information."),
    ("internal", 2, "Internal", "Ordinary company information; not for outsiders."),
    ("confidential", 3, "Confidential", "Customer data, source code, contracts."),
    ("restricted", 4, "Restricted", "Regulated or secret data: credentials, health, card data."),
]


def seed(apps, schema_editor):
    DataClassification = apps.get_model("keys", "DataClassification")
    for key, level, label, description in LEVELS:
        DataClassification.objects.get_or_create(
            key=key, defaults={"level": level, "label": label, "description": description}
        )


class Migration(migrations.Migration):
    dependencies = [("keys", "0001_keys_models_requests_approvals_commands")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
