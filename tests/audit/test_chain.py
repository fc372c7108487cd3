"""The hash chain: tampering is found at the right event, PostgreSQL refuses changes, and
concurrent writers still produce one chain."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

import audit
from audit.chain import GENESIS_HASH, compute_hash, head_hash, verify
from audit.models import AuditEvent
from govsite.accounts import services
from govsite.accounts.models import OrgRole
from tests.audit.helpers import append_only_bypassed, swap_seq, write_events
from tests.database_roles import superuser_cursor
from tests.factories import make_user

# The app's role is refused by its privileges (CI: DATABASE_OWNER_URL set); a single role, by the trigger.
APP_UPDATE_REFUSED = "append-only: UPDATE refused|permission denied for table audit_auditevent"
APP_DELETE_REFUSED = "append-only: DELETE refused|permission denied for table audit_auditevent"
APP_TRUNCATE_REFUSED = "append-only: TRUNCATE refused|permission denied for table audit_auditevent"

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only triggers exist on PostgreSQL only"
)


def run_audit_verify() -> tuple[int, str, str]:
    """`manage.py audit_verify` in-process: (exit code, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
    except SystemExit as exc:
        return exc.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


# --- an intact chain ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_intact_chain_prints_ok_with_count_and_head_hash():
    events = write_events(5)
    code, out, err = run_audit_verify()
    assert code == 0
    assert out.splitlines()[0] == f"OK 5 events, head {events[-1].hash}"
    assert err == ""


@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_empty_audit_log_verifies_with_the_genesis_head():
    code, out, _ = run_audit_verify()
    assert code == 0
    assert out.splitlines()[0] == f"OK 0 events, head {GENESIS_HASH}"


@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_each_event_links_to_the_one_before_it():
    events = write_events(3)
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    assert head_hash() == events[2].hash


@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_event_rolled_back_with_its_change_leaves_no_gap_in_the_chain():
    write_events(2)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        audit.record(action="test.rolled_back")
        1 / 0  # noqa: B018 - the change fails after its event was written
    write_events(1)
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3]
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()
    assert verify().ok


@pytest.mark.django_db(transaction=True)
def test_events_recorded_in_a_batch_continue_the_chain_in_their_order_like_one_call_each():
    write_events(2)
    with transaction.atomic():
        batch = audit.record_many([{"action": "test.batch", "data": {"n": n}} for n in range(5)])
        audit.record(action="test.after_batch")
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, 9))
    assert [e.pk for e in events[2:7]] == [e.pk for e in batch]
    assert [e.data["n"] for e in events[2:7]] == [0, 1, 2, 3, 4]
    for before, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == before.hash
        assert event.hash == compute_hash(event, event.prev_hash)  # what is stored is what was hashed
    assert verify().ok and verify().count == 8


@pytest.mark.django_db(transaction=True)
def test_a_batch_outside_a_transaction_is_refused_and_writes_nothing():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.record_many([{"action": "test.outside"}])
    assert not AuditEvent.objects.exists()


# --- tampering ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "team.created"),
        ("actor_label", "someone-else@example.com"),
        ("data", '{"n": 99}'),
        ("created_at", "2020-01-01T00:00:00+00:00"),
        ("target_id", "42"),
    ],
)
def test_altered_field_is_reported_at_its_sequence_number(column, value):
    write_events(5)
    with append_only_bypassed() as cursor:
        cursor.execute(f"UPDATE audit_auditevent SET {column} = %s WHERE seq = 3", [value])  # noqa: S608

    result = verify()
    assert (result.ok, result.bad_seq, result.count) == (False, 3, 2)
    code, out, err = run_audit_verify()
    assert code == 1
    assert out == ""
    assert err.strip() == "FAIL at event 3: content does not match its hash"


@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_altered_event_with_recomputed_hash_is_caught_by_the_next_link():
    events = write_events(5)
    forged = AuditEvent.objects.get(seq=3)
    forged.action = "team.created"
    new_hash = compute_hash(forged, forged.prev_hash)
    with append_only_bypassed() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = %s, hash = %s WHERE seq = 3", [forged.action, new_hash])

    assert new_hash != events[2].hash
    code, _, err = run_audit_verify()
    assert code == 1
    assert err.strip() == "FAIL at event 4: link to the previous event is broken"


@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_deleted_event_is_reported_as_missing_by_its_sequence_number():
    write_events(5)
    with append_only_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 3")

    result = verify()
    assert (result.ok, result.bad_seq) == (False, 3)
    code, out, err = run_audit_verify()
    assert code == 1
    assert err.strip() == "FAIL at event 3: event 3 is missing"


@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_deleted_first_event_is_reported_as_missing():
    write_events(3)
    with append_only_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 1")

    code, _, err = run_audit_verify()
    assert code == 1
    assert err.strip() == "FAIL at event 1: event 1 is missing"


@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
@pytest.mark.parametrize(("first", "second"), [(3, 4), (2, 5)])
def test_swapped_pair_is_reported_at_the_first_swapped_position(first, second):
    write_events(6)
    with append_only_bypassed() as cursor:
        swap_seq(cursor, first, second)

    result = verify()
    assert (result.ok, result.bad_seq) == (False, first)
    code, _, err = run_audit_verify()
    assert code == 1
    assert err.strip().startswith(f"FAIL at event {first}: ")


# --- PostgreSQL refuses changes ----------------------------------------------------------------


@postgres_only
@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_postgres_refuses_to_update_an_audit_event():
    event = write_events(3)[1]
    with pytest.raises(DatabaseError, match=APP_UPDATE_REFUSED), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="team.created")
    with pytest.raises(DatabaseError, match=APP_UPDATE_REFUSED), transaction.atomic():
        event.actor_label = "someone-else@example.com"
        event.save()
    with (
        pytest.raises(DatabaseError, match=APP_UPDATE_REFUSED),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_auditevent SET data = '{}'")
    # Even a superuser (or the owner) is refused by the trigger, unless they first disable it.
    with pytest.raises(DatabaseError, match="append-only: UPDATE refused"), superuser_cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET data = '{}'")
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"
    assert verify().ok


@postgres_only
@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_postgres_refuses_to_delete_an_audit_event():
    event = write_events(3)[1]
    with pytest.raises(DatabaseError, match=APP_DELETE_REFUSED), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with (
        pytest.raises(DatabaseError, match=APP_DELETE_REFUSED),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditevent")
    with pytest.raises(DatabaseError, match="append-only: DELETE refused"), superuser_cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent")
    assert AuditEvent.objects.count() == 3
    assert verify().ok


@postgres_only
@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_postgres_refuses_to_truncate_the_audit_log():
    write_events(3)
    with (
        pytest.raises(DatabaseError, match=APP_TRUNCATE_REFUSED),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE audit_auditevent")
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"), superuser_cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 3


# --- many writers --------------------------------------------------------------------------------

THREADS = 8
PER_THREAD = 25


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="the in-memory SQLite test database (shared cache) raises 'table is locked' instead of waiting",
)
@pytest.mark.django_db(transaction=True)
def test_events_written_from_many_connections_at_once_form_one_unbroken_chain():
    admin = make_user(email="admin@example.com", org_roles=[OrgRole.ADMIN])
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(PER_THREAD):
                if n % 2:
                    # Half the writers go through a real service (its own durable transaction) ...
                    services.team_create(actor=admin, name=f"Team {n}-{i}", slug=f"team-{n}-{i}")
                else:
                    # ... half append bare events, each in a transaction of its own.
                    with transaction.atomic():
                        audit.record(action="test.concurrent", actor_label=f"writer-{n}", data={"i": i})
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    total = THREADS * PER_THREAD
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, total + 1))
    assert AuditEvent.objects.filter(action="team.created").count() == total // 2
    result = verify()
    assert result.ok, result.line()
    assert result.count == total
    assert run_audit_verify()[1].splitlines()[0] == f"OK {total} events, head {head_hash()}"


@pytest.mark.django_db(transaction=True)
def test_event_written_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.record(action="test.no_transaction")
    assert not AuditEvent.objects.exists()


# --- the real command, as an operator runs it ---------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@postgres_only
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_manage_py_audit_verify_exits_0_when_intact_and_1_naming_the_bad_event():
    events = write_events(4)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "AUDIT_CHECKPOINT_DIR": str(settings.AUDIT_CHECKPOINT_DIR),
        "AUDIT_CHECKPOINT_KEY_FILE": str(settings.AUDIT_CHECKPOINT_KEY_FILE),
    }
    command = [sys.executable, "manage.py", "audit_verify"]

    intact = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.splitlines()[0] == f"OK 4 events, head {events[-1].hash}"

    with append_only_bypassed() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'forged' WHERE seq = 2")
    tampered = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert tampered.returncode == 1
    assert "FAIL at event 2: content does not match its hash" in tampered.stderr
