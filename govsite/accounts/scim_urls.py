"""SCIM 2.0 for identity providers (/scim/v2/..., bearer token) and the admins' SCIM token page.

Included from govsite/urls.py with `path("", include("govsite.accounts.scim_urls"))`. The API's URL names
start with "scim_api_": they are token-authenticated, so the page permission table leaves them out
(tests/scim/test_scim_access.py checks their authentication).
"""

from django.urls import path, re_path

from govsite.accounts import scim_views as views

# Identity providers differ on a trailing slash; both are answered.
urlpatterns = [
    re_path(
        r"^scim/v2/ServiceProviderConfig/?$", views.service_provider_config, name="scim_api_service_provider_config"
    ),
    re_path(r"^scim/v2/Schemas/?$", views.schemas, name="scim_api_schemas"),
    re_path(r"^scim/v2/Schemas/(?P<schema_id>[^/]+)/?$", views.schema_detail, name="scim_api_schema"),
    re_path(r"^scim/v2/ResourceTypes/?$", views.resource_types, name="scim_api_resource_types"),
    re_path(r"^scim/v2/ResourceTypes/(?P<name>[^/]+)/?$", views.resource_type_detail, name="scim_api_resource_type"),
    re_path(r"^scim/v2/Users/?$", views.users, name="scim_api_users"),
    re_path(r"^scim/v2/Users/\.search/?$", views.users_search, name="scim_api_users_search"),
    re_path(r"^scim/v2/Users/(?P<pk>[^/]+)/?$", views.user_detail, name="scim_api_user"),
    re_path(r"^scim/v2/Groups/?$", views.groups, name="scim_api_groups"),
    re_path(r"^scim/v2/Groups/\.search/?$", views.groups_search, name="scim_api_groups_search"),
    re_path(r"^scim/v2/Groups/(?P<pk>[^/]+)/?$", views.group_detail, name="scim_api_group"),
    re_path(r"^scim/v2/(?P<feature>[Bb]ulk|[Mm]e|\.search)/?$", views.not_implemented, name="scim_api_not_implemented"),
    # Anything else under /scim/v2/ is a SCIM 404, never the site's HTML page.
    re_path(r"^scim/v2(?:/.*)?$", views.not_found, name="scim_api_not_found"),
    # Settings → SCIM: admins create (shown once) and revoke tokens
    path("settings/scim/", views.scim_tokens, name="scim_tokens"),
    path("settings/scim/<int:pk>/revoke/", views.scim_token_revoke, name="scim_token_revoke"),
]
