"""Gateway commands: the one way govsite changes the gateway. `gateway_command_issue` writes the command
in the decision's transaction and enqueues it once that commits; a job carries it out through the shared
outbox (govsite.outbox): a lease per attempt, back-off, given up after GATEWAY_COMMAND_MAX_ATTEMPTS, swept
every minute for what the queue lost. What a command does at LiteLLM, and what its success or give-up
changes in govsite, is keys.gateway_handlers."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from govsite import jobs
from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from govsite.errors import InvalidTransition
from govsite.gateway.client import GatewayError
from govsite.outbox import Outbox
from keys import gateway_handlers
from keys.models import GatewayCommand, VirtualKey

MAX_ATTEMPTS = getattr(settings, "GATEWAY_COMMAND_MAX_ATTEMPTS", 8)
LEASE = timedelta(seconds=getattr(settings, "GATEWAY_COMMAND_LEASE_SECONDS", 300))
# A rollout's key commands go to the queue in jobs of this many: a few per worker for 500 keys, each job a
# second or two of gateway calls.
BATCH = 20


def _given_up(command: GatewayCommand) -> None:
    audit.record(
        action="gateway_command.failed",
        actor_label="system",
        target=command,
        team=command.team,
        data={"kind": command.kind, "attempts": command.attempts, "error": command.last_error},
    )
    gateway_handlers.apply_give_up(command)


COMMANDS = Outbox(
    model=GatewayCommand,
    job="keys.jobs.run_gateway_command",
    waiting=(GatewayCommand.Status.PENDING,),
    retry=GatewayCommand.Status.PENDING,
    running=GatewayCommand.Status.RUNNING,
    done=GatewayCommand.Status.DONE,
    gave_up=GatewayCommand.Status.FAILED,
    max_attempts=MAX_ATTEMPTS,
    lease=LEASE,
    backoff_base=timedelta(seconds=15),
    on_give_up=_given_up,
)


def gateway_command_issue(
    kind: str, *, key: VirtualKey | None = None, team: Team | None = None, payload: dict | None = None
) -> GatewayCommand:
    """Inside the caller's transaction: a command for the gateway (a key's commands belong to its team),
    carried out by a job once that transaction commits, never before."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("gateway_command_issue runs inside the transaction of the decision it carries out")
    command = _command(kind, key=key, team=team, payload=payload)
    command.save(force_insert=True)
    COMMANDS.enqueue(command.pk)
    return command


def _command(kind: str, *, key: VirtualKey | None = None, team: Team | None = None, payload: dict | None = None):
    """A command row, not yet saved: a key's commands belong to its team."""
    return GatewayCommand(
        kind=kind,
        key=key,
        team_id=team.pk if team is not None else (key.team_id if key is not None else None),
        payload=payload or {},
    )


def gateway_command_execute(*, command_id: int) -> str:
    """Carry out one command against the gateway (the job). Returns the command's status afterwards."""
    command = COMMANDS.claim(command_id)
    if command is None:
        return "skipped"
    try:
        outcome = gateway_handlers.HANDLERS[command.kind](command)
    except GatewayError as exc:
        return COMMANDS.fail(command.pk, exc, retryable=exc.retryable).status

    def done(command: GatewayCommand) -> None:
        command.done_at = timezone.now()
        command.save(update_fields=["done_at"])
        gateway_handlers.apply_outcome(command, outcome)
        if command.kind == GatewayCommand.Kind.ROLLOUT_SYNC:
            # The team and users exist: each waiting key gets its own command now, carried out in batches so
            # every worker can take some and none pays a job's overhead per key.
            waiting = gateway_handlers.rollout_keys_waiting(command).filter(status=VirtualKey.Status.PROVISIONING)
            payload = {"rollout": command.payload["rollout"]}
            issued = GatewayCommand.objects.bulk_create(
                [_command(GatewayCommand.Kind.KEY_GENERATE, key=key, payload=payload) for key in waiting],
                batch_size=500,
            )
            pks = [c.pk for c in issued]
            for start in range(0, len(pks), BATCH):
                jobs.enqueue("keys.jobs.run_gateway_commands", pks[start : start + BATCH])

    return COMMANDS.complete(command.pk, apply=done).status


def gateway_commands_execute(*, command_ids: list[int]) -> dict[str, int]:
    """Several commands one after the other (a rollout's keys), each claimed, carried out and completed on
    its own as `gateway_command_execute` does: how many ended in each status."""
    outcomes: dict[str, int] = {}
    for pk in command_ids:
        status = gateway_command_execute(command_id=pk)
        outcomes[status] = outcomes.get(status, 0) + 1
    return outcomes


@transaction.atomic(durable=True)
def gateway_command_retry(*, command: GatewayCommand, actor: User) -> GatewayCommand:
    """An admin puts a failed command back in the queue by hand."""
    permissions.require(permissions.can_manage_gateway(actor), "Only admins can retry gateway commands.")
    command = GatewayCommand.objects.select_for_update().get(pk=command.pk)
    if command.status != GatewayCommand.Status.FAILED:
        raise InvalidTransition(command.status, "retry")
    command.status = GatewayCommand.Status.PENDING
    command.attempts = 0
    command.next_attempt_at = timezone.now()
    command.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    audit.record(
        actor=actor, action="gateway_command.retried", target=command, team=command.team, data={"kind": command.kind}
    )
    gateway_handlers.apply_retry(command, actor=actor)
    COMMANDS.enqueue(command.pk)
    return command


def gateway_commands_sweep(*, now=None) -> int:
    """Re-enqueue commands left undone: due retries, and running ones whose worker vanished
    (Redis flushed, worker killed). Runs from cron every minute."""
    return COMMANDS.sweep(now=now)
