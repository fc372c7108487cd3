"""Evidence exports become outbox rows (govsite.outbox): `next_attempt_at` is when a queued export is due
and, while one runs, when its worker's lease ends. A build running now keeps the lease its last progress
report gave it."""

from datetime import timedelta

import django.utils.timezone
from django.db import migrations, models
from django.db.models import F

LEASE = timedelta(minutes=10)


def lease_from_heartbeat(apps, schema_editor):
    EvidenceExport = apps.get_model("audit", "EvidenceExport")
    EvidenceExport.objects.filter(status="running", heartbeat_at__isnull=False).update(
        next_attempt_at=F("heartbeat_at") + LEASE
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_access_review_snapshot_write_once")]

    operations = [
        migrations.AddField(
            model_name="evidenceexport",
            name="next_attempt_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                help_text="When it is due; while running, when its worker's lease ends.",
            ),
        ),
        migrations.RunPython(lease_from_heartbeat, migrations.RunPython.noop),
    ]
