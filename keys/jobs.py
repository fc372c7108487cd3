"""RQ entry points for keys: thin, load by id and call a service. Safe to run twice."""

from keys import services


def run_gateway_command(command_id: int) -> str:
    return services.gateway_command_execute(command_id=command_id)


def run_gateway_commands(command_ids: list[int]) -> dict[str, int]:
    return services.gateway_commands_execute(command_ids=command_ids)


def sweep_gateway_commands() -> int:
    return services.gateway_commands_sweep()


def expire_keys() -> int:
    return services.keys_expire()


def finish_rotations() -> int:
    return services.rotation_grace_sweep()


def revoke_leaver_keys() -> int:
    return services.leaver_keys_sweep()


def reconcile_gateway() -> dict:
    return vars(services.gateway_reconcile())
