"""Every write to people, teams, memberships, roles, SSO mappings and SCIM provisioning, each with its audit event.

One module per concern; callers import from here (`from govsite.accounts import services`).
"""

from govsite.accounts.services.people import user_create, user_deactivate, user_reactivate
from govsite.accounts.services.roles import user_set_org_roles
from govsite.accounts.services.scim_provisioning import (
    AlreadyExists,
    ScimUserInput,
    scim_group_create,
    scim_group_delete,
    scim_group_sync,
    scim_user_create,
    scim_user_delete,
    scim_user_update,
)
from govsite.accounts.services.scim_tokens import (
    SCIM_LAST_USED_RESOLUTION,
    SCIM_TOKEN_PREFIX,
    ScimTokenRefused,
    hash_scim_token,
    scim_token_authenticate,
    scim_token_create,
    scim_token_revoke,
)
from govsite.accounts.services.sso import sso_mapping_create, sso_mapping_delete, sso_sync_groups
from govsite.accounts.services.teams import (
    TEAM_FIELDS,
    membership_add,
    membership_change_role,
    membership_remove,
    register_membership_added_hook,
    team_create,
    team_update,
)

__all__ = [
    "SCIM_LAST_USED_RESOLUTION",
    "SCIM_TOKEN_PREFIX",
    "TEAM_FIELDS",
    "AlreadyExists",
    "ScimTokenRefused",
    "ScimUserInput",
    "hash_scim_token",
    "membership_add",
    "membership_change_role",
    "membership_remove",
    "register_membership_added_hook",
    "scim_group_create",
    "scim_group_delete",
    "scim_group_sync",
    "scim_token_authenticate",
    "scim_token_create",
    "scim_token_revoke",
    "scim_user_create",
    "scim_user_delete",
    "scim_user_update",
    "sso_mapping_create",
    "sso_mapping_delete",
    "sso_sync_groups",
    "team_create",
    "team_update",
    "user_create",
    "user_deactivate",
    "user_reactivate",
    "user_set_org_roles",
]
