from django.contrib import admin

from audit.admin_audit import AuditedModelAdmin
from govsite.accounts.models import Membership, OrgRoleGrant, SsoGroupMapping, Team, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(User)
class UserAdmin(AuditedModelAdmin):
    list_display = ("email", "full_name", "is_active", "date_joined")
    search_fields = ("email", "full_name")
    list_filter = ("is_active",)
    fields = ("email", "full_name", "is_active", "deactivated_at", "date_joined")
    # Deactivation goes through the people page, which ends sessions and revokes keys.
    readonly_fields = ("is_active", "deactivated_at", "date_joined")


@admin.register(Team)
class TeamAdmin(AuditedModelAdmin):
    list_display = ("name", "slug", "cost_centre")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]
    # The Slack webhook URL is set on the team's own page, which never shows it whole once saved.
    exclude = ("slack_webhook_url",)


@admin.register(OrgRoleGrant)
class OrgRoleGrantAdmin(AuditedModelAdmin):
    list_display = ("user", "role", "source")
    list_filter = ("role", "source")


@admin.register(SsoGroupMapping)
class SsoGroupMappingAdmin(AuditedModelAdmin):
    list_display = ("group", "team", "team_role", "org_role")
