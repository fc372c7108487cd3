"""Gateway commands become outbox rows (govsite.outbox): while a command runs, `next_attempt_at` is when
its worker's lease ends (it was `updated_at` + the lease). A command running now keeps the lease it had."""

from datetime import timedelta

import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.models import F

LEASE = timedelta(seconds=getattr(settings, "GATEWAY_COMMAND_LEASE_SECONDS", 300))


def lease_from_updated_at(apps, schema_editor):
    GatewayCommand = apps.get_model("keys", "GatewayCommand")
    GatewayCommand.objects.filter(status="running").update(next_attempt_at=F("updated_at") + LEASE)


class Migration(migrations.Migration):
    dependencies = [("keys", "0002_seed_data_classifications")]

    operations = [
        migrations.AlterField(
            model_name="gatewaycommand",
            name="next_attempt_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                help_text="When it is due; while running, when its worker's lease ends.",
            ),
        ),
        migrations.RunPython(lease_from_updated_at, migrations.RunPython.noop),
    ]
