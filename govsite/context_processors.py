from django.conf import settings

from govsite import inbox, replica
from govsite.accounts import mfa, permissions


def site(request):
    # The navigation's counts (approvals waiting, unread notices) are read on the primary, even on a page
    # whose figures come from the read replica (govsite.replica).
    with replica.primary_reads():
        return _site(request)


def _site(request):
    user = getattr(request, "user", None)
    active = permissions._active(user)
    approves_keys = active and permissions.has_key_approval_queue(user)
    waiting, unread = _counts(request, user, approves_keys) if active else (0, 0)
    return {
        # Set by govsite.replica.on_replica on pages whose figures may come from the read replica.
        "replica_read": getattr(request, "replica_read", None),
        "gateway_is_sandbox": settings.GATEWAY_IS_SANDBOX,
        "sso_only": settings.SOCIALACCOUNT_ONLY,
        "mfa_required": settings.MFA_REQUIRED,
        "step_up_minutes": settings.MFA_STEP_UP_SECONDS // 60,
        "nav": {
            "is_admin": permissions.is_admin(user),
            "is_finance": permissions.is_finance(user),
            "is_auditor": permissions.is_auditor(user),
            "sees_org": permissions.sees_whole_org(user),
            "can_view_audit": permissions.can_view_audit_log(user),
            "inbox": waiting,
            "approves_keys": approves_keys,
            "manages_gateway": permissions.can_manage_gateway(user),
            "sees_quarantine": permissions.can_view_reconciliation(user),
            "unread_notices": unread,
            "decides_increases": permissions.can_decide_budget_increases(user),
            "sees_reconciliation": permissions.can_view_reconciliation(user),
            "sees_dashboards": permissions.can_view_team_dashboards(user),
            "exports_evidence": permissions.can_export_evidence(user),
            "reads_access_reviews": permissions.can_view_access_reviews(user),
            "reviews_access": permissions.can_review_access(user),
            # Second factors are managed here for password sessions; SSO sessions rely on the identity provider.
            "manages_second_factors": permissions._active(user) and not mfa.signed_in_with_sso(request),
        },
    }


def _counts(request, user, approves_keys: bool) -> tuple[int, int]:
    """(items waiting for the person, their unread notices)."""
    # The inbox and home pages read every section already and leave both counts on the request.
    known = getattr(request, "navigation_counts", None)
    if known is not None:
        return known
    return inbox.navigation_counts(user=user, applies={"key_requests": approves_keys})
