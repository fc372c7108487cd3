"""The auditor workspace. Included at the site root (`path("", include("audit.urls"))`); every path
starts with audit/ beside the audit log's own `audit/`."""

from django.urls import path

from audit import views

urlpatterns = [
    path("audit/evidence/", views.evidence_export_list, name="evidence_export_list"),
    path("audit/evidence/new/", views.evidence_export_start, name="evidence_export_start"),
    path("audit/evidence/<int:pk>/", views.evidence_export_detail, name="evidence_export_detail"),
    path("audit/evidence/<int:pk>/download/", views.evidence_export_download, name="evidence_export_download"),
    path("audit/samples/", views.sample_list, name="sample_list"),
    path("audit/samples/new/", views.sample_draw, name="sample_draw"),
    path("audit/samples/<int:pk>/", views.sample_detail, name="sample_detail"),
    path("audit/reviews/", views.access_review_list, name="access_review_list"),
    path("audit/reviews/new/", views.access_review_open, name="access_review_open"),
    path("audit/reviews/queue/", views.access_review_queue, name="access_review_queue"),
    path("audit/reviews/queue/decide/", views.access_review_decide_bulk, name="access_review_decide_bulk"),
    path("audit/reviews/items/<int:pk>/decide/", views.access_review_decide, name="access_review_decide"),
    path("audit/reviews/<int:pk>/", views.access_review_detail, name="access_review_detail"),
    path("audit/reviews/<int:pk>/sign-off/", views.access_review_sign_off, name="access_review_sign_off"),
    path("audit/leavers/", views.leaver_report, name="leaver_report"),
]
