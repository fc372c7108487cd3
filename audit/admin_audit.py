"""Changes made through Django admin write audit events, in the admin's own transaction."""

from django.contrib import admin
from django.db import transaction
from django.forms.models import model_to_dict

import audit


def _snapshot(obj) -> dict:
    return {k: v for k, v in model_to_dict(obj).items() if k not in {"password"}}


class AuditedModelAdmin(admin.ModelAdmin):
    def log_addition(self, request, obj, message):
        with transaction.atomic():
            audit.record(
                actor=request.user,
                action=f"admin.{obj._meta.model_name}.created",
                target=obj,
                data={"after": _snapshot(obj), "via": "django-admin"},
            )
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        with transaction.atomic():
            audit.record(
                actor=request.user,
                action=f"admin.{obj._meta.model_name}.changed",
                target=obj,
                data={"after": _snapshot(obj), "message": str(message), "via": "django-admin"},
            )
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                audit.record(
                    actor=request.user,
                    action=f"admin.{obj._meta.model_name}.deleted",
                    target=obj,
                    data={"before": _snapshot(obj), "via": "django-admin"},
                )
        return super().log_deletions(request, queryset)
