from django.contrib import admin
from django.urls import include, path

from audit import views as audit_views
from govsite import views
from govsite.accounts import views as account_views
from govsite.ops import views as ops_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # allauth's MFA pages, each in one transaction with its audit event; they shadow allauth's own.
    path("accounts/2fa/", include("govsite.accounts.mfa_urls")),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("inbox/", views.inbox, name="inbox"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("govsite.api.urls")),
    path("", include("govsite.api.page_urls")),  # Settings → API tokens
    # people and teams
    path("teams/", account_views.team_list, name="team_list"),
    path("teams/new/", account_views.team_create, name="team_create"),
    path("teams/<slug:slug>/", account_views.team_detail, name="team_detail"),
    path("teams/<slug:slug>/edit/", account_views.team_edit, name="team_edit"),
    path("teams/<slug:slug>/members/add/", account_views.membership_add, name="membership_add"),
    path("teams/<slug:slug>/members/<int:pk>/role/", account_views.membership_role, name="membership_role"),
    path("teams/<slug:slug>/members/<int:pk>/remove/", account_views.membership_remove, name="membership_remove"),
    path("people/", account_views.people_list, name="people_list"),
    path("people/new/", account_views.person_create, name="person_create"),
    path("people/<int:pk>/", account_views.person_detail, name="person_detail"),
    path("people/<int:pk>/roles/", account_views.person_roles, name="person_roles"),
    path("people/<int:pk>/deactivate/", account_views.person_deactivate, name="person_deactivate"),
    path("people/<int:pk>/reactivate/", account_views.person_reactivate, name="person_reactivate"),
    path("settings/sso/", account_views.sso_mappings, name="sso_mappings"),
    path("settings/sso/<int:pk>/delete/", account_views.sso_mapping_delete, name="sso_mapping_delete"),
    path("", include("govsite.accounts.scim_urls")),
    # audit
    path("audit/", audit_views.audit_log, name="audit_log"),
    path("", include("audit.urls")),
    path("", include("keys.urls")),
    path("", include("budgets.urls")),
    path("", include("adoption.urls")),
]

handler403 = "govsite.errors.forbidden"
