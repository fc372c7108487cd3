"""The API's pages that live outside /api/ (so the page permission table covers them)."""

from django.urls import path

from govsite.api import views

urlpatterns = [
    path("settings/api-tokens/", views.token_list, name="settings_api_tokens"),
    path("settings/api-tokens/<int:pk>/revoke/", views.token_revoke, name="settings_api_token_revoke"),
]
