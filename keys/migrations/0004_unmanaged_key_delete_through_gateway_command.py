"""Deleting an unmanaged key is a gateway command (`unmanaged.delete`) run after commit; the key is
`deleting` until the gateway confirms."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("keys", "0003_gateway_command_lease_in_next_attempt_at")]

    operations = [
        migrations.AlterField(
            model_name="gatewaycommand",
            name="kind",
            field=models.CharField(
                choices=[
                    ("key.generate", "Create key"),
                    ("key.delete", "Delete key"),
                    ("key.update", "Update key"),
                    ("key.block", "Block key"),
                    ("key.unblock", "Unblock key"),
                    ("team.sync", "Create or update team"),
                    ("unmanaged.delete", "Delete unmanaged key"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="unmanagedkey",
            name="status",
            field=models.CharField(
                choices=[
                    ("open", "Needs a decision"),
                    ("adopted", "Adopted"),
                    ("deleting", "Deleting from the gateway"),
                    ("deleted", "Deleted from the gateway"),
                ],
                default="open",
                max_length=10,
            ),
        ),
    ]
