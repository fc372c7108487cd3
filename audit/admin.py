from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is never edited, not even by admins."""

    list_display = ("seq", "created_at", "actor_label", "action", "target_type", "target_label")
    list_filter = ("action",)
    search_fields = ("actor_label", "action", "target_label")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
