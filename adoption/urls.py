from django.urls import path

from adoption import views

urlpatterns = [
    path("dashboards/", views.dashboard_org, name="dashboard_org"),
    path("dashboards/teams/<slug:slug>/", views.dashboard_team, name="dashboard_team"),
    path("dashboards/models/<path:model>/", views.dashboard_model, name="dashboard_model"),
    path("me/usage/", views.my_usage, name="my_usage"),
    path("adoption/", views.adoption_org, name="adoption_org"),
    path("adoption/teams/<slug:slug>/", views.adoption_team, name="adoption_team"),
    path("vendor/plotly.min.js", views.plotly_js, name="plotly_js"),
    path("vendor/plotly.css", views.plotly_css, name="plotly_css"),
]
