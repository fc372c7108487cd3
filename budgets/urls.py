from django.urls import include, path

from budgets import api, quarantine_views, views

urlpatterns = [
    path("budgets/", views.budget_list, name="budget_list"),
    path("budgets/new/", views.budget_create, name="budget_create"),
    path("budgets/<int:pk>/", views.budget_detail, name="budget_detail"),
    path("budgets/<int:pk>/edit/", views.budget_edit, name="budget_edit"),
    path("budgets/<int:pk>/increase/", views.budget_increase_request, name="budget_increase_request"),
    path("keys/<int:pk>/cap/", views.key_cap_increase, name="key_cap_increase"),
    path("budgets/increases/", views.increase_queue, name="budget_increase_queue"),
    path("budgets/increases/<int:pk>/", views.increase_detail, name="budget_increase_detail"),
    path("budgets/increases/<int:pk>/decide/", views.increase_decide, name="budget_increase_decide"),
    path("budgets/reconciliation/", views.reconciliation, name="reconciliation"),
    path("budgets/ingest/", views.ingest_settings, name="ingest_settings"),
    path("budgets/ingest/tokens/<int:pk>/revoke/", views.ingest_token_revoke, name="ingest_token_revoke"),
    path("budgets/quarantine/", quarantine_views.quarantine_list, name="quarantine_list"),
    path("budgets/quarantine/<int:pk>/", quarantine_views.quarantine_detail, name="quarantine_detail"),
    path("budgets/quarantine/<int:pk>/retry/", quarantine_views.quarantine_retry, name="quarantine_retry"),
    path("budgets/quarantine/<int:pk>/discard/", quarantine_views.quarantine_discard, name="quarantine_discard"),
    path("", include("budgets.finops.urls")),
    path("notices/", views.notice_list, name="notice_list"),
    path("notices/read/", views.notices_read, name="notices_read"),
    # Token-authenticated machine endpoint (the gateway callback); deliberately unnamed, because the
    # permission table's checks are for session-authenticated pages: see tests/budgets/test_ingest_api.py.
    path("api/ingest/spend", api.ingest_spend),
]
