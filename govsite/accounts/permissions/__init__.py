"""Who may see or decide what: the one place (docs/ARCHITECTURE.md, Roles).

Views, the API and selectors ask this module; nothing else encodes a role rule. Functions named
`can_*` answer a question, `require_*` raise PermissionDenied, `*_visible_to` return querysets of
this app's models already restricted to what the user may reach (404 outside scope), and `*_scope`
return the condition (a `Q`) that rows of another app's model must meet to be reached: the rule stays
here, and the owning app's selectors apply it (`VirtualKey.objects.filter(permissions.key_scope(user))`),
so this foundation package imports no app above it. `*_queue_scope` is what a person may decide.

One package, read as one module (`permissions.can_reveal_key(...)`): `roles` holds the role facts, the
guards and who gets told; `keys`, `budgets`, `audit` and `tokens_and_dashboards` the rules of each area.
"""

from govsite.accounts.permissions.audit import (  # noqa: F401
    access_review_item_queue_scope,
    can_decide_access_review_item,
    can_draw_sample,
    can_export_evidence,
    can_open_access_review,
    can_review_access,
    can_sign_off_access_review,
    can_view_access_reviews,
    can_view_leaver_report,
    require_can_decide_access_review_item,
)
from govsite.accounts.permissions.budgets import (  # noqa: F401
    budget_increase_queue_scope,
    budget_increase_scope,
    budget_scope,
    can_decide_budget_increase,
    can_decide_budget_increases,
    can_manage_budgets,
    can_manage_ingest,
    can_request_budget_increase,
    can_request_key_cap_increase,
    can_view_reconciliation,
    can_view_team_costs,
    require_can_decide_budget_increase,
)
from govsite.accounts.permissions.keys import (  # noqa: F401
    REVOCABLE_KEY_STATUSES,
    KeyActions,
    KeyRequestActions,
    can_cancel_key_request,
    can_decide_key_request,
    can_manage_gateway,
    can_manage_model_policy,
    can_reassign_key_owner,
    can_reassign_key_owner_to,
    can_request_any_key,
    can_request_key,
    can_reveal_key,
    can_revoke_key,
    can_rotate_key,
    can_view_gateway_operations,
    has_key_approval_queue,
    key_actions_for,
    key_owner_candidates,
    key_reassign_refusal,
    key_request_actions_for,
    key_request_cancel_refusal,
    key_request_decide_refusal,
    key_request_queue_scope,
    key_request_scope,
    key_reveal_refusal,
    key_revoke_refusal,
    key_rotate_refusal,
    key_scope,
    require_can_cancel_key_request,
    require_can_decide_key_request,
    require_can_reassign_key_owner,
    require_can_reassign_key_owner_to,
    require_can_reveal_key,
    require_can_revoke_key,
    require_can_rotate_key,
)
from govsite.accounts.permissions.roles import (  # noqa: F401
    EVERYTHING,
    NOTHING,
    _active,
    admins,
    can_manage_people,
    can_manage_teams,
    can_see_team_members,
    can_view_audit_log,
    can_view_team,
    deciders_of,
    finance_people,
    has_org_role,
    is_admin,
    is_approver_of,
    is_auditor,
    is_finance,
    is_member_of,
    may_change_state,
    people_visible_to,
    require,
    require_admin,
    reviewers_of,
    sees_whole_org,
    team_roles,
    teams_user_decides_for,
    teams_visible_to,
)
from govsite.accounts.permissions.tokens_and_dashboards import (  # noqa: F401
    api_token_permits,
    api_token_scope,
    can_create_api_token,
    can_revoke_api_token,
    can_view_org_costs,
    can_view_own_usage,
    can_view_team_dashboards,
    teams_with_costs_visible_to,
)
