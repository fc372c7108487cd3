"""Signed checkpoints outside the database: each tampering a database superuser can do — events cut off,
the chain rebuilt or rewritten with recomputed hashes, the append-only trigger disabled — and each
tampering of the checkpoint files makes `audit_verify` exit 1 naming it; a bundle made before the tampering
fails `verify_evidence` on the tampered site and still verifies offline on its own."""

from __future__ import annotations

import base64
import json
import os
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client

from audit import checkpoints, jobs
from audit.chain import GENESIS_HASH, compute_hash
from audit.evidence_check import check_bundle_checkpoint
from audit.models import AuditEvent
from tests.audit.conftest import build_export, export_path
from tests.audit.helpers import append_only_bypassed, write_events
from tests.database_roles import superuser_cursor

pytestmark = [
    # The attacker is a superuser on a connection of their own (tests/database_roles.py): what they tamper with is
    # committed.
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the attacks are a PostgreSQL superuser's"),
]
TABLE = AuditEvent._meta.db_table


def run(command: str, *args) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return exc.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def checkpoint_file(number: int) -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR) / checkpoints.file_name(number)


def checkpointed_chain() -> None:
    """Ten events, checkpoint 1 after the first five, checkpoint 2 at the end."""
    write_events(5)
    checkpoints.checkpoint_write(reason="test")
    write_events(4)
    checkpoints.checkpoint_write(reason="test")


# --- the attacks, as a superuser does them ---------------------------------------------------------------


def delete_events_after(seq: int) -> None:
    with superuser_cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER audit_event_no_update_delete")
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq > %s", [seq])  # noqa: S608
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER audit_event_no_update_delete")


def rehash_from(events: list[AuditEvent]) -> None:
    """Rewrite the table as `events`, renumbered from 1 with every hash recomputed: a chain that verifies."""
    prev = GENESIS_HASH
    for seq, event in enumerate(events, start=1):
        event.seq, event.prev_hash = seq, prev
        event.hash = prev = compute_hash(event, prev)
    with append_only_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608
        AuditEvent.objects.bulk_create(events)


def rebuild_without(*seqs: int) -> None:
    rehash_from([event for event in AuditEvent.objects.order_by("seq") if event.seq not in seqs])


def edit_and_recompute(seq: int) -> None:
    events = list(AuditEvent.objects.order_by("seq"))
    events[seq - 1].data = {"n": "forged"}
    rehash_from(events)


# --- an intact chain -----------------------------------------------------------------------------------------


def test_checkpoints_chain_to_each_other_and_audit_verify_names_the_key():
    checkpointed_chain()
    first, second = (checkpoints.parse(checkpoint_file(n).read_bytes()) for n in (1, 2))
    assert (first.number, first.seq, first.prev_sha256) == (1, 5, checkpoints.GENESIS_SHA256)
    assert (second.number, second.seq, second.prev_sha256) == (2, 10, first.sha256)  # 9 events and checkpoint 1's
    assert second.head_hash == AuditEvent.objects.get(seq=10).hash
    assert oct(checkpoint_file(1).stat().st_mode & 0o777) == "0o444"

    code, out, err = run("audit_verify")
    assert (code, err) == (0, "")
    key = checkpoints.fingerprint(checkpoints.public_key())
    assert out.splitlines()[1].startswith(f"OK 2 checkpoints signed by {key}, the last at event #10")


def test_the_key_is_not_in_the_database_and_can_come_from_the_environment(settings):
    raw = Ed25519PrivateKey.generate()
    settings.AUDIT_CHECKPOINT_KEY = base64.b64encode(
        raw.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    ).decode()
    write_events(2)
    written = checkpoints.checkpoint_write(reason="test")
    assert written.signed_by(raw.public_key())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE data::text LIKE %s", [f"%{settings.AUDIT_CHECKPOINT_KEY}%"])  # noqa: S608
        assert cursor.fetchone() == (0,)
    assert run("audit_verify")[0] == 0


def test_the_schedule_writes_a_checkpoint_only_when_the_chain_moved():
    write_events(3)
    assert jobs.write_audit_checkpoint() == "checkpoint 1 at event #3"
    # Its own event (#4) does not count as news.
    assert jobs.write_audit_checkpoint() == "no new events"
    write_events(1)
    assert jobs.write_audit_checkpoint() == "checkpoint 2 at event #5"
    assert sorted(p.name for p in Path(settings.AUDIT_CHECKPOINT_DIR).iterdir()) == [
        checkpoints.file_name(1),
        checkpoints.file_name(2),
    ]


def test_a_checkpoint_file_is_never_written_twice():
    write_events(1)
    first = checkpoints.checkpoint_write(reason="test")
    with pytest.raises(FileExistsError):
        os.open(checkpoint_file(first.number), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    assert checkpoints.checkpoint_write(reason="test").number == 2
    assert checkpoint_file(1).read_bytes() == first.raw


def test_the_audit_page_shows_the_public_key(auditor_user):
    write_events(1)
    checkpoints.checkpoint_write(reason="test")
    client = Client()
    client.force_login(auditor_user)
    page = client.get("/audit/").content.decode()
    assert checkpoints.fingerprint(checkpoints.public_key()) in page
    assert checkpoints.public_pem(checkpoints.public_key()).strip().splitlines()[1] in page
    assert "Last checkpoint: 1, event #1" in page


# --- each tampering, named -----------------------------------------------------------------------------------


def assert_audit_verify_fails(*expected: str) -> str:
    code, out, err = run("audit_verify")
    assert code == 1, out
    assert out == ""
    for text in expected:
        assert text in err, err
    return err


def test_the_last_events_deleted_are_named_a_truncation():
    checkpointed_chain()
    delete_events_after(7)
    err = assert_audit_verify_fails(
        "FAIL events missing after checkpoint 2 (truncation): it signed event #10, the chain ends at #7",
        "FAIL checkpoint 2 is not recorded in the audit chain (its event, written just after #10, was removed)",
    )
    # The chain on its own still verifies: only the checkpoints show what was cut off.
    assert err.count("FAIL") == 2


def test_a_chain_rebuilt_without_two_events_is_named_a_rewrite():
    checkpointed_chain()
    rebuild_without(2, 3)
    assert run("audit_verify")[2].count("FAIL") == 2
    assert_audit_verify_fails(
        "FAIL the chain does not contain checkpoint 1's head (rewritten): event #5 has hash",
        f"the checkpoint signed {checkpoints.parse(checkpoint_file(1).read_bytes()).head_hash}",
        "FAIL events missing after checkpoint 2 (truncation): it signed event #10, the chain ends at #9",
    )


def test_an_event_edited_with_every_later_hash_recomputed_is_named_a_rewrite():
    checkpointed_chain()
    edit_and_recompute(3)
    err = assert_audit_verify_fails(
        "FAIL the chain does not contain checkpoint 1's head (rewritten): event #5",
        "FAIL the chain does not contain checkpoint 2's head (rewritten): event #10",
    )
    assert "FAIL at event" not in err  # every hash was recomputed: the chain alone looks intact


@pytest.mark.parametrize("number", [1, 2])
def test_a_deleted_checkpoint_file_is_named(number):
    checkpointed_chain()
    event = AuditEvent.objects.get(action=checkpoints.ACTION, target_id=str(number))
    checkpoint_file(number).unlink()
    assert_audit_verify_fails(
        f"FAIL checkpoint {number} ({checkpoints.file_name(number)}) is missing from {settings.AUDIT_CHECKPOINT_DIR} "
        f"(recorded in audit event #{event.seq})"
    )


def test_an_edited_checkpoint_file_is_named_by_its_signature():
    checkpointed_chain()
    path = checkpoint_file(1)
    data = json.loads(path.read_bytes())
    data["seq"] = 4
    path.chmod(0o644)
    path.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    key = checkpoints.fingerprint(checkpoints.public_key())
    assert_audit_verify_fails(
        f"FAIL checkpoint 1 ({checkpoints.file_name(1)}): the signature does not verify with the key {key} "
        "(the file was altered or signed by another key)"
    )


def test_a_checkpoint_re_signed_with_another_key_and_a_garbled_one_are_named(settings):
    checkpointed_chain()
    other = Ed25519PrivateKey.generate()
    data = json.loads(checkpoint_file(2).read_bytes())
    body = {name: data[name] for name in data if name != "signature"}
    body["head_hash"] = "f" * 64
    forged = checkpoints._sign(other, body)
    checkpoint_file(2).chmod(0o644)
    checkpoint_file(2).write_bytes(forged)
    checkpoint_file(1).chmod(0o644)
    checkpoint_file(1).write_bytes(b"{not json")
    assert_audit_verify_fails(
        "FAIL checkpoint 1 (checkpoint-000000000001.json) was altered: unreadable",
        "FAIL checkpoint 2 (checkpoint-000000000002.json): the signature does not verify",
    )


def test_a_disabled_append_only_trigger_is_named():
    checkpointed_chain()
    with superuser_cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER audit_event_no_truncate")
    assert_audit_verify_fails(
        f"FAIL the append-only trigger audit_event_no_truncate on {TABLE} is disabled (ALTER TABLE … DISABLE TRIGGER)"
    )
    with superuser_cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER audit_event_no_truncate")
    assert run("audit_verify")[0] == 0


# --- a bundle made before the tampering -----------------------------------------------------------------------


def site_public_key(tmp_path) -> Path:
    path = tmp_path / "site-key.pem"
    path.write_text(checkpoints.public_pem(checkpoints.public_key()))
    return path


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (lambda head: delete_events_after(head - 2), "events missing after the bundle's checkpoint 1 (truncation)"),
        (lambda head: rebuild_without(2, 3), "the chain does not contain the bundle's checkpoint 1's head (rewritten)"),
        (lambda head: edit_and_recompute(1), "the chain does not contain the bundle's checkpoint 1's head (rewritten)"),
    ],
    ids=["last-events-deleted", "rebuilt-without-two", "edited-and-recomputed"],
)
def test_a_bundle_made_before_tampering_fails_on_the_site_and_verifies_offline(tamper, named, auditor_user, tmp_path):
    write_events(6)
    export = build_export(auditor_user)
    bundle = str(export_path(export))
    key = str(site_public_key(tmp_path))
    code, out, err = run("verify_evidence", bundle)
    assert (code, err) == (0, ""), err
    signed = checkpoints.parse(checkpoint_file(1).read_bytes())
    assert f"OK checkpoint 1 (event #{signed.seq}, head {signed.head_hash}) is signed by" in out
    assert f"OK the live chain still holds event #{signed.seq} with the bundle's head hash" in out

    tamper(signed.seq)

    code, out, err = run("verify_evidence", bundle)
    assert code == 1
    assert f"FAIL {named}" in err, err
    code, out, err = run("verify_evidence", bundle, "--offline", "--public-key", key)
    assert (code, err) == (0, ""), err
    assert f"is signed by the given public key {checkpoints.fingerprint(checkpoints.public_key())}" in out


def test_a_bundle_whose_checkpoint_was_re_signed_by_another_key_fails_offline_with_the_site_key(
    auditor_user, tmp_path, open_bundle
):
    """Whoever swaps the checkpoint and the public key inside a bundle (and rewrites its manifest) passes only
    a check that trusts the bundle's own key: with the key from the site's audit page, it fails."""
    write_events(2)
    bundle_path = export_path(build_export(auditor_user))
    key = str(site_public_key(tmp_path))
    other = Ed25519PrivateKey.generate()
    forged_path = tmp_path / "forged.zip"
    with zipfile.ZipFile(bundle_path) as src, zipfile.ZipFile(forged_path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "audit_checkpoint.json":
                body = {k: v for k, v in json.loads(data).items() if k != "signature"}
                data = checkpoints._sign(other, body)
            elif item.filename == "audit_checkpoint_public_key.pem":
                data = checkpoints.public_pem(other.public_key()).encode()
            dst.writestr(item, data)
    # The manifest's hashes no longer match, so first the plain file check fails ...
    assert run("verify_evidence", str(forged_path), "--offline")[0] == 1
    # ... and even without it, the checkpoint does not verify with the site's key.
    assert check_bundle_checkpoint(forged_path, Path(key).read_bytes()).ok is False
    assert check_bundle_checkpoint(forged_path).ok is True


def test_a_malformed_key_is_named_by_audit_verify_and_on_the_audit_page(settings, auditor_user):
    write_events(1)
    checkpoints.checkpoint_write(reason="test")
    settings.AUDIT_CHECKPOINT_KEY = "not-a-key"
    assert_audit_verify_fails("FAIL AUDIT_CHECKPOINT_KEY is not an Ed25519 private key")
    client = Client()
    client.force_login(auditor_user)
    response = client.get("/audit/")
    assert response.status_code == 200
    assert "AUDIT_CHECKPOINT_KEY is not an Ed25519 private key" in response.content.decode()


def test_a_deleted_newest_checkpoint_is_not_papered_over_by_the_next_one():
    checkpointed_chain()
    checkpoint_file(2).unlink()
    write_events(1)
    assert checkpoints.checkpoint_write(reason="test").number == 3
    assert_audit_verify_fails(f"FAIL checkpoint 2 ({checkpoints.file_name(2)}) is missing")
