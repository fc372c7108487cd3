"""No Docker engine runs here, so the compose file is checked by reading it: every govsite
service runs a command that exists in this project, and sets only variables the settings read."""

import importlib
from pathlib import Path

import pytest
import rq.worker
import yaml
from django.conf import settings
from django.core.management import get_commands
from django.utils.module_loading import import_string

from govsite import settings as project_settings

ROOT = Path(settings.BASE_DIR)
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
GOVSITE_SERVICES = sorted(name for name, svc in SERVICES.items() if svc.get("image") == "govsite:latest")


def _check_command(argv: list[str]) -> None:
    program, *args = argv
    if program == "python" and args[:1] == ["manage.py"]:
        command = args[1]
        assert command in get_commands(), f"manage.py has no command {command!r}"
        if command == "rqcron":
            importlib.import_module(args[2])
        if "--worker-class" in args:
            worker_class = import_string(args[args.index("--worker-class") + 1])
            assert issubclass(worker_class, rq.worker.BaseWorker), f"{worker_class} is not an RQ worker"
    elif program == "python" and args[:1] == ["-c"]:
        compile(args[1], "<healthcheck>", "exec")
    elif program == "gunicorn":
        module, _, attr = args[0].partition(":")
        assert hasattr(importlib.import_module(module), attr), f"{args[0]} is not importable"
    else:
        pytest.fail(f"unknown program in a govsite service: {argv}")


def test_the_stack_has_every_service_the_architecture_names():
    assert {"postgres", "redis", "web", "worker", "cron", "litellm", "litellm-db"} <= set(SERVICES)
    assert {"web", "worker", "cron"} <= set(GOVSITE_SERVICES)


@pytest.mark.parametrize("name", GOVSITE_SERVICES)
def test_each_govsite_service_runs_a_command_that_exists(name):
    service = SERVICES[name]
    _check_command(service["command"])
    if "healthcheck" in service:
        _check_command(service["healthcheck"]["test"][1:])


@pytest.mark.parametrize("name", GOVSITE_SERVICES)
def test_each_govsite_service_sets_only_variables_the_settings_read(name):
    unread = set(SERVICES[name]["environment"]) - settings.ENV_VARS_READ
    assert not unread, f"{name} sets variables no setting reads: {sorted(unread)}"


def test_every_service_has_a_health_check():
    missing = [name for name, svc in SERVICES.items() if "healthcheck" not in svc and svc.get("restart") != "no"]
    assert not missing


def test_files_mounted_into_containers_exist_in_the_project():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the project"


def test_the_web_and_the_worker_share_the_evidence_exports():
    """The worker writes a bundle (EVIDENCE_EXPORT_DIR, by default GOVSITE_VAR_DIR/exports) that the web serves."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    var_dir = next(line for line in dockerfile.splitlines() if "GOVSITE_VAR_DIR=" in line).split("GOVSITE_VAR_DIR=")[1]
    exports = f"{var_dir.strip()}/exports"
    for name in ("web", "worker"):
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in SERVICES[name].get("volumes", [])}
        assert exports in mounts, f"{name} does not mount {exports}"
        assert mounts[exports] in COMPOSE["volumes"], f"{name}'s {exports} is not a named volume"
    assert SERVICES["web"]["volumes"] == SERVICES["worker"]["volumes"]


def test_the_audit_checkpoints_and_their_key_are_volumes_outside_the_database():
    """Every govsite service that may write a checkpoint (the worker: exports and the schedule; the web and the
    cron scheduler: the public key, `audit_verify`) mounts AUDIT_CHECKPOINT_DIR and the key's directory, each a
    named volume of its own, at the settings' defaults under GOVSITE_VAR_DIR."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    var_dir = next(line for line in dockerfile.splitlines() if "GOVSITE_VAR_DIR=" in line).split("GOVSITE_VAR_DIR=")[1]
    var_dir = var_dir.strip()
    checkpoints, key = f"{var_dir}/audit-checkpoints", f"{var_dir}/audit-key"
    # The defaults as the settings module computes them (the tests move both under a temporary directory).
    assert project_settings.AUDIT_CHECKPOINT_DIR == project_settings.VAR_DIR / "audit-checkpoints"
    assert project_settings.AUDIT_CHECKPOINT_KEY_FILE.parent == project_settings.VAR_DIR / "audit-key"
    for name in ("web", "worker", "cron"):
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in SERVICES[name].get("volumes", [])}
        for path in (checkpoints, key):
            assert path in mounts, f"{name} does not mount {path}"
            assert mounts[path] in COMPOSE["volumes"], f"{name}'s {path} is not a named volume"
        assert mounts[checkpoints] != mounts[key], "the signing key shares a volume with the checkpoints"
        assert mounts[checkpoints] != "govsite-db"


def test_the_callback_spool_is_on_a_volume_of_the_litellm_service():
    """Payloads the callback could not deliver must outlive the proxy's container."""
    litellm = SERVICES["litellm"]
    spool = litellm["environment"]["GOVSITE_SPOOL_DIR"]
    mounts = {entry.split(":")[1]: entry.split(":")[0] for entry in litellm["volumes"]}
    assert spool in mounts, f"{spool} is not mounted"
    assert mounts[spool] in COMPOSE["volumes"], "the spool is on a bind mount or the container's own disk"


def test_the_web_is_checked_for_readiness_and_the_worker_and_cron_run_the_same_checks():
    assert "/readyz" in " ".join(SERVICES["web"]["healthcheck"]["test"])
    for name in ("worker", "cron"):
        assert SERVICES[name]["healthcheck"]["test"][1:] == ["python", "manage.py", "readyz"]


def test_the_app_connects_as_its_own_role_and_only_the_one_shots_hold_the_owners():
    """Least privilege: web, worker and cron connect as the app role; db-roles (as the superuser) makes the roles,
    migrate runs as the owner; no long-running service is given the owner's or the superuser's URL."""
    import dj_database_url

    owner = dj_database_url.parse(SERVICES["migrate"]["environment"]["DATABASE_OWNER_URL"])["USER"]
    superuser = SERVICES["postgres"]["environment"]["POSTGRES_USER"]
    assert SERVICES["migrate"]["depends_on"]["db-roles"]["condition"] == "service_completed_successfully"
    assert "--superuser-url" in SERVICES["db-roles"]["command"]
    for name in ("web", "worker", "cron"):
        environment = SERVICES[name]["environment"]
        app = dj_database_url.parse(environment["DATABASE_URL"])["USER"]
        assert app not in (owner, superuser), name
        assert "DATABASE_OWNER_URL" not in environment, name
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_a_streaming_replica_serves_the_dashboards_and_workers_are_scaled():
    replica = SERVICES["postgres-replica"]
    script = " ".join(replica["command"])
    assert "pg_basebackup -h postgres" in script and " -R " in script  # streams from the primary
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    initdb = [v for v in SERVICES["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert initdb and "replication" in (ROOT / initdb[0].split(":")[0]).read_text()
    for name in GOVSITE_SERVICES:
        env = SERVICES[name]["environment"]
        assert env["DATABASE_REPLICA_URL"].split("@")[1].startswith("postgres-replica:")
        assert env["DATABASE_URL"].split("@")[1].startswith("postgres:")
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2
    assert "deploy" not in SERVICES["cron"] or SERVICES["cron"]["deploy"].get("replicas", 1) >= 1
