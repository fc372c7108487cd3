"""Every write in the key lifecycle, one concern per module; each transition is one service and writes its
audit event. Importers use `keys.services.<name>`; the modules:

- policy: model policy, data classes, a team's key rules
- requests: key requests and their decisions
- lifecycle: a key made, revealed, rotated, reassigned, reduced, revoked
- sweeps: expiry, rotation grace, leavers (cron)
- commands: gateway commands, issued in a transaction and run through the outbox
- reconciliation: the gateway's keys set against govsite's; unmanaged keys
- rollouts: keys for a whole team (or a chosen list) in one decision; people who join later
"""

from govsite.errors import InvalidTransition
from keys.gateway_handlers import gateway_team_id, gateway_user_id
from keys.services.commands import (
    COMMANDS,
    LEASE,
    MAX_ATTEMPTS,
    gateway_command_execute,
    gateway_command_issue,
    gateway_command_retry,
    gateway_commands_execute,
    gateway_commands_sweep,
)
from keys.services.lifecycle import (
    REVOCABLE,
    ROTATION_GRACE,
    KeyReassignment,
    key_cap_set,
    key_create,
    key_reassign_owner,
    key_reduce,
    key_reveal,
    key_revoke,
    key_rotate,
    key_withdraw,
)
from keys.services.policy import (
    MAX_MONTHLY_BUDGET,
    MODEL_POLICY_FIELDS,
    data_classification_relabel,
    model_policy_save,
    team_key_policy,
    team_key_policy_save,
)
from keys.services.reconciliation import (
    ReconcileResult,
    gateway_reconcile,
    unmanaged_key_adopt,
    unmanaged_key_delete,
)
from keys.services.requests import (
    KeyRequestInput,
    key_request_approve,
    key_request_cancel,
    key_request_create,
    key_request_reject,
    key_request_validate,
)
from keys.services.rollouts import (
    RolloutInput,
    rollout_approve,
    rollout_cancel,
    rollout_create,
    rollout_member_joined,
    rollout_reject,
    rollout_revoke,
    rollout_validate,
)
from keys.services.sweeps import EXPIRY_REMINDER, keys_expire, leaver_keys_sweep, rotation_grace_sweep

__all__ = [
    "key_cap_set",
    "COMMANDS",
    "EXPIRY_REMINDER",
    "LEASE",
    "MAX_ATTEMPTS",
    "MAX_MONTHLY_BUDGET",
    "MODEL_POLICY_FIELDS",
    "REVOCABLE",
    "ROTATION_GRACE",
    "InvalidTransition",
    "KeyReassignment",
    "KeyRequestInput",
    "ReconcileResult",
    "RolloutInput",
    "data_classification_relabel",
    "gateway_command_execute",
    "gateway_commands_execute",
    "gateway_command_issue",
    "gateway_command_retry",
    "gateway_commands_sweep",
    "gateway_reconcile",
    "gateway_team_id",
    "gateway_user_id",
    "key_create",
    "key_reassign_owner",
    "key_reduce",
    "key_request_approve",
    "key_request_cancel",
    "key_request_create",
    "key_request_reject",
    "key_request_validate",
    "key_reveal",
    "key_revoke",
    "key_rotate",
    "key_withdraw",
    "keys_expire",
    "leaver_keys_sweep",
    "model_policy_save",
    "rollout_approve",
    "rollout_cancel",
    "rollout_create",
    "rollout_member_joined",
    "rollout_reject",
    "rollout_revoke",
    "rollout_validate",
    "rotation_grace_sweep",
    "team_key_policy",
    "team_key_policy_save",
    "unmanaged_key_adopt",
    "unmanaged_key_delete",
]
