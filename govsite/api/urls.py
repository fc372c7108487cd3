"""/api/: version 1 of the REST API, its OpenAPI schema and its documentation."""

from django.urls import include, path, re_path

from govsite.api import audit, budgets, dashboards, errors, evidence, finops, keys, me, views

v1 = [
    path("me/", me.MeApi.as_view(), name="api_me"),
    # keys and approvals
    path("key-requests/", keys.KeyRequestListCreateApi.as_view(), name="api_key_requests"),
    path("key-requests/<int:pk>/", keys.KeyRequestDetailApi.as_view(), name="api_key_request_detail"),
    path("key-requests/<int:pk>/cancel/", keys.KeyRequestCancelApi.as_view(), name="api_key_request_cancel"),
    path("approvals/", keys.ApprovalQueueApi.as_view(), name="api_approval_queue"),
    path("approvals/<int:pk>/decide/", keys.ApprovalDecideApi.as_view(), name="api_approval_decide"),
    path("keys/", keys.KeyListApi.as_view(), name="api_keys"),
    path("keys/<int:pk>/", keys.KeyDetailApi.as_view(), name="api_key_detail"),
    path("keys/<int:pk>/reveal/", keys.KeyRevealApi.as_view(), name="api_key_reveal"),
    path("keys/<int:pk>/rotate/", keys.KeyRotateApi.as_view(), name="api_key_rotate"),
    path("keys/<int:pk>/revoke/", keys.KeyRevokeApi.as_view(), name="api_key_revoke"),
    # budgets and increases
    path("budgets/", budgets.BudgetListCreateApi.as_view(), name="api_budgets"),
    path("budgets/<int:pk>/", budgets.BudgetDetailApi.as_view(), name="api_budget_detail"),
    path("budgets/<int:pk>/increases/", budgets.BudgetIncreaseCreateApi.as_view(), name="api_budget_increase_create"),
    path("budget-increases/", budgets.BudgetIncreaseListApi.as_view(), name="api_budget_increases"),
    path("budget-increases/queue/", budgets.BudgetIncreaseQueueApi.as_view(), name="api_budget_increase_queue"),
    path("budget-increases/<int:pk>/", budgets.BudgetIncreaseDetailApi.as_view(), name="api_budget_increase_detail"),
    path(
        "budget-increases/<int:pk>/decide/",
        budgets.BudgetIncreaseDecideApi.as_view(),
        name="api_budget_increase_decide",
    ),
    # spend and adoption
    path("spend/", dashboards.SpendSummaryApi.as_view(), name="api_spend_summary"),
    path("adoption/", dashboards.AdoptionSummaryApi.as_view(), name="api_adoption_summary"),
    # audit log and evidence
    path("audit-events/", audit.AuditEventListApi.as_view(), name="api_audit_events"),
    path("evidence-exports/", evidence.EvidenceExportListCreateApi.as_view(), name="api_evidence_exports"),
    path("evidence-exports/<int:pk>/", evidence.EvidenceExportDetailApi.as_view(), name="api_evidence_export_detail"),
    path(
        "evidence-exports/<int:pk>/download/",
        evidence.EvidenceExportDownloadApi.as_view(),
        name="api_evidence_export_download",
    ),
    # FinOps: FOCUS exports and the chargeback
    path("focus-exports/", finops.FocusExportListCreateApi.as_view(), name="api_focus_exports"),
    path("focus-exports/<int:pk>/", finops.FocusExportDetailApi.as_view(), name="api_focus_export_detail"),
    path("focus-exports/<int:pk>/download/", finops.FocusExportDownloadApi.as_view(), name="api_focus_export_download"),
    path("chargeback/<str:month>/", finops.ChargebackApi.as_view(), name="api_chargeback"),
    path("chargeback/<str:month>/close/", finops.ChargebackCloseApi.as_view(), name="api_chargeback_close"),
    path("chargeback/<str:month>/reopen/", finops.ChargebackReopenApi.as_view(), name="api_chargeback_reopen"),
]

urlpatterns = [
    path("v1/", include(v1)),
    # Anything else under /api/v1/ is a JSON 404, not the site's HTML page.
    re_path(r"^v1/", errors.not_found),
    path("schema/", views.SchemaView.as_view(), name="api_schema"),
    path("docs/", views.api_docs, name="api_docs"),
]
