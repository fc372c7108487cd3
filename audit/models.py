from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One state change, linked to the one before it by hash (see audit.chain).

    Rows are append-only: on PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE.
    """

    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=80, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["actor", "-seq"], name="audit_actor_seq"),
            models.Index(fields=["team", "-seq"], name="audit_team_seq"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self):
        return f"#{self.seq} {self.action} by {self.actor_label or 'system'}"
