from django.urls import path

from budgets.finops import views

urlpatterns = [
    path("finops/focus/", views.focus_exports, name="focus_exports"),
    path("finops/focus/<int:pk>/download/", views.focus_export_download, name="focus_export_download"),
    path("finops/focus/<int:pk>/retry/", views.focus_export_retry, name="focus_export_retry"),
    path("finops/focus/schedules/", views.focus_schedules, name="focus_schedules"),
    path("finops/focus/schedules/<int:pk>/toggle/", views.focus_schedule_toggle, name="focus_schedule_toggle"),
    path("finops/chargeback/", views.chargeback_report, name="chargeback"),
    path("finops/chargeback/<str:month>/close/", views.chargeback_close, name="chargeback_close"),
    path("finops/chargeback/<str:month>/reopen/", views.chargeback_reopen, name="chargeback_reopen"),
]
