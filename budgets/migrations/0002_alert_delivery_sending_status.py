"""Alert deliveries become outbox rows (govsite.outbox): a delivery being sent is `sending`, and its
`next_attempt_at` is then when the sender's lease ends. Existing rows keep their status."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("budgets", "0001_ledger_rollups_budgets_alerts_increases")]

    operations = [
        migrations.AlterField(
            model_name="alertdelivery",
            name="next_attempt_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                help_text="When it is due; while sending, when its worker's lease ends.",
            ),
        ),
        migrations.AlterField(
            model_name="alertdelivery",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("sending", "Sending"),
                    ("sent", "Sent"),
                    ("failed", "Failed — will retry"),
                    ("gave_up", "Failed — gave up"),
                ],
                db_index=True,
                default="pending",
                max_length=8,
            ),
        ),
    ]
