from django.urls import path

from govsite.api import keys

urlpatterns = [
    path("v1/key-requests/", keys.KeyRequestListCreateApi.as_view(), name="api_key_requests"),
    path("v1/key-requests/<int:pk>/cancel/", keys.KeyRequestCancelApi.as_view(), name="api_key_request_cancel"),
    path("v1/approvals/", keys.ApprovalQueueApi.as_view(), name="api_approval_queue"),
    path("v1/approvals/<int:pk>/decide/", keys.ApprovalDecideApi.as_view(), name="api_approval_decide"),
]
