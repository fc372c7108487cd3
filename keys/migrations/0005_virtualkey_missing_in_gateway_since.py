"""Reconciliation records a key missing in the gateway once per episode: the episode's start is kept on
the key and cleared when the key is seen again or revoked."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("keys", "0004_unmanaged_key_delete_through_gateway_command")]

    operations = [
        migrations.AddField(
            model_name="virtualkey",
            name="missing_in_gateway_since",
            field=models.DateTimeField(
                blank=True,
                null=True,
                help_text="Active here but not in the gateway since then (reconciliation); cleared when seen again.",
            ),
        ),
    ]
