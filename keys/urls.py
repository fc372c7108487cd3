from django.urls import path

from keys import rollout_views, views

urlpatterns = [
    path("keys/", views.key_list, name="key_list"),
    path("keys/request/", views.key_request_create, name="key_request_create"),
    path("keys/requests/<int:pk>/", views.key_request_detail, name="key_request_detail"),
    path("keys/requests/<int:pk>/cancel/", views.key_request_cancel, name="key_request_cancel"),
    path("keys/<int:pk>/", views.key_detail, name="key_detail"),
    path("keys/<int:pk>/reveal/", views.key_reveal, name="key_reveal"),
    path("keys/<int:pk>/revoke/", views.key_revoke, name="key_revoke"),
    path("keys/<int:pk>/rotate/", views.key_rotate, name="key_rotate"),
    path("keys/<int:pk>/reassign/", views.key_reassign, name="key_reassign"),
    path("rollouts/", rollout_views.rollout_list, name="rollout_list"),
    path("rollouts/new/", rollout_views.rollout_create, name="rollout_create"),
    path("rollouts/<int:pk>/", rollout_views.rollout_detail, name="rollout_detail"),
    path("rollouts/<int:pk>/decide/", rollout_views.rollout_decide, name="rollout_decide"),
    path("rollouts/<int:pk>/revoke/", rollout_views.rollout_revoke, name="rollout_revoke"),
    path("approvals/", views.approval_queue, name="approval_queue"),
    path("approvals/decide/", views.approval_decide_bulk, name="approval_decide_bulk"),
    path("approvals/<int:pk>/decide/", views.approval_decide, name="approval_decide"),
    path("settings/models/", views.model_policy_list, name="model_policy_list"),
    path("settings/models/new/", views.model_policy_edit, name="model_policy_create"),
    path("settings/models/<int:pk>/", views.model_policy_edit, name="model_policy_edit"),
    path("settings/classifications/<int:pk>/", views.classification_relabel, name="classification_relabel"),
    path("teams/<slug:slug>/key-policy/", views.team_key_policy, name="team_key_policy"),
    path("gateway/commands/", views.gateway_commands, name="gateway_commands"),
    path("gateway/commands/<int:pk>/retry/", views.gateway_command_retry, name="gateway_command_retry"),
    path("gateway/unmanaged/", views.unmanaged_keys, name="unmanaged_keys"),
    path("gateway/unmanaged/<int:pk>/", views.unmanaged_key_decide, name="unmanaged_key_decide"),
]
