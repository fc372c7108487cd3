from django.contrib import admin

from budgets.models import Budget, IngestToken, PullState


@admin.register(PullState)
class PullStateAdmin(admin.ModelAdmin):
    """Read-only: the pull job owns these rows."""

    list_display = ("name", "watermark", "last_success_at", "failures", "last_error")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Budget, IngestToken)
class ReadOnlyAdmin(admin.ModelAdmin):
    """Read-only: changes go through the budget pages, which audit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
