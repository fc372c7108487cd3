"""The evidence bundle: every file present, hashes that verify, row counts that match the database,
failed checks first in the summary, a tampered audit log caught, and bad input refused."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit import evidence, evidence_check, reports
from audit import services as audit_services
from audit.chain import verify
from audit.models import AuditEvent, EvidenceExport
from audit.period import Period
from budgets import services as budget_services
from budgets.models import BudgetIncreaseRequest, DailyRollup
from govsite.accounts import services as account_services
from govsite.accounts.models import Membership, OrgRoleGrant
from keys import services as key_services
from keys.models import Approval, KeyRequest, VirtualKey
from tests.audit.conftest import approved_key, build_export, export_path, provisioned
from tests.audit.helpers import append_only_bypassed, write_events
from tests.factories import VirtualKeyFactory

pytestmark = pytest.mark.django_db

REPORTS = (
    "key_inventory",
    "key_lifecycle",
    "samples",
    "leavers",
    "access_reviews",
    "budget_increases",
    "budget_changes",
    "policy_and_role_changes",
    "access_roles",
    "spend_by_key",
    "audit_log",
)
EXPECTED_FILES = (
    {f"{name}.csv" for name in REPORTS}
    | {f"{name}.json" for name in REPORTS}
    | {"audit_verify.txt", "audit_checkpoint.json", "audit_checkpoint_public_key.pem", "summary.html", "manifest.json"}
)


def run(command: str, *args) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return exc.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def seeded(world, open_model, second_approver_a):
    """A day of activity in team A: keys approved and provisioned, a rejected request, a revoked key,
    a leaver whose key was revoked, a budget increase decided, an older key made before the period."""
    team, member, approver, admin = (
        world.team_a,
        world.users["member_a"],
        world.users["approver_a"],
        world.users["admin"],
    )
    yesterday = timezone.now() - timedelta(days=1)
    older = VirtualKeyFactory(team=team, owner=member, approved_by=approver, created_at=yesterday)
    first = provisioned(approved_key(member, approver, team, [open_model]))
    second = provisioned(
        approved_key(member, second_approver_a, team, [open_model], purpose="Codex for the billing service")
    )
    rejected = key_services.key_request_create(requester=member, data=_input(team, open_model))
    key_services.key_request_reject(request=rejected, approver=approver, note="use the team key")
    key_services.key_revoke(key=second, actor=member, reason="no longer needed")
    leaver = approved_key(second_approver_a, approver, team, [open_model])
    provisioned(leaver)
    account_services.user_deactivate(actor=admin, user=second_approver_a, reason="left the company")
    key_services.leaver_keys_sweep()
    VirtualKey.objects.filter(pk=leaver.pk).update(status=VirtualKey.Status.REVOKED, revoked_at=timezone.now())
    budget = budget_services.budget_create(actor=admin, team=team, amount=Decimal("100"), approver_limit=Decimal("50"))
    increase = budget_services.budget_increase_request_create(
        budget=budget, requester=member, amount=Decimal("25"), justification="launch week"
    )
    budget_services.budget_increase_approve(increase=increase, approver=approver, note="launch week is real")
    DailyRollup.objects.create(
        day=timezone.now().date(), team=team, user=member, key=first, model="gpt-4o", requests=3, cost=Decimal("1.5")
    )
    return {"older": older, "first": first, "second": second, "rejected": rejected, "leaver": leaver}


def _input(team, model):
    from tests.keys.conftest import request_input

    return request_input(team, [model])


# --- a complete bundle -------------------------------------------------------------------------------


def test_bundle_for_a_seeded_period_has_every_file_its_hashes_verify_and_counts_match(
    seeded, world, auditor_user, open_bundle
):
    export = build_export(auditor_user)
    assert export.status == EvidenceExport.Status.DONE, export.error
    assert export.progress == 100 and export.chain_ok is True
    bundle = open_bundle(export_path(export))

    assert bundle.names == EXPECTED_FILES
    assert evidence_check.verify_bundle(bundle.path).ok
    assert evidence.file_sha256(bundle.path) == export.sha256
    manifest = bundle.manifest()
    assert set(manifest["files"]) == EXPECTED_FILES - {"manifest.json"}
    for name, meta in manifest["files"].items():
        assert meta["sha256"] == hashlib.sha256(bundle.zip.read(name)).hexdigest(), name
    assert manifest["exported_by"] == auditor_user.email
    assert manifest["period"]["start"] == timezone.now().date().isoformat()
    assert manifest["generator"].startswith("govsite ")
    assert manifest["audit_chain"]["ok"] is True
    assert tuple(manifest["row_counts"]) == reports.REPORT_NAMES == REPORTS  # the order the pages list them in

    # Each report's rows: the CSV, the JSON and the manifest agree, and so does the database.
    today = timezone.now().date()
    period = Period(today, today)
    exported = AuditEvent.objects.get(action="evidence.exported", target_id=str(export.pk))
    expected = {
        "key_inventory": VirtualKey.objects.count(),  # every key exists at the end of today
        "key_lifecycle": VirtualKey.objects.exclude(pk=seeded["older"].pk).count() + 1,  # + the rejected request
        "samples": min(25, VirtualKey.objects.filter(created_at__date=today).count()),
        "leavers": 1,
        "access_reviews": 0,
        "budget_increases": BudgetIncreaseRequest.objects.count(),
        "spend_by_key": 1,
        "audit_log": AuditEvent.objects.filter(created_at__date=today, seq__lt=exported.seq).count(),
    }
    for report, count in expected.items():
        assert manifest["row_counts"][report] == count, report
    assert manifest["row_counts"]["access_roles"] == OrgRoleGrant.objects.count() + Membership.objects.count()
    assert [row["action"] for row in bundle.csv("budget_changes")] == [
        "budget.created",
        "budget_increase.requested",
        "budget_increase.approved",
    ]
    assert [row["action"] for row in bundle.csv("policy_and_role_changes")] == [
        "user.deactivated",
        "evidence.export_requested",
    ]
    (increase,) = bundle.csv("budget_increases")
    assert (increase["requested_by"], increase["decided_by"], increase["status"]) == (
        "member-a@example.com",
        "approver-a@example.com",
        "approved",
    )
    assert (increase["amount_before"], increase["amount_after"], increase["check_decider_not_requester"]) == (
        "100.00",
        "125.00",
        "PASS",
    )
    for report in REPORTS:
        assert len(bundle.csv(report)) == manifest["row_counts"][report] == len(bundle.json(report)["rows"]), report
        assert bundle.json(report)["row_count"] == manifest["row_counts"][report]
    assert manifest["row_counts"]["audit_log"] == reports.events_in(period).filter(seq__lt=exported.seq).count()
    assert export.row_counts == manifest["row_counts"]

    leaver = bundle.csv("leavers")[0]
    assert leaver["person"] == "approver2-a@example.com"
    assert leaver["key_alias"] == seeded["leaver"].alias
    assert leaver["check_key_removed_in_time"] == "PASS" and float(leaver["delay_hours"]) < 1
    lifecycle = {row["key_alias"]: row for row in bundle.csv("key_lifecycle")}
    assert lifecycle[seeded["first"].alias]["check_approver_not_requester"] == "PASS"
    assert lifecycle[seeded["first"].alias]["check_approved_before_created"] == "PASS"
    assert lifecycle[seeded["second"].alias]["revoke_reason"] == "no longer needed"
    assert any(row["request_status"] == "rejected" and row["key_alias"] == "" for row in bundle.csv("key_lifecycle"))
    inventory = {row["alias"]: row for row in bundle.csv("key_inventory")}
    assert inventory[seeded["older"].alias]["status_at_period_end"] == "active"
    assert inventory[seeded["second"].alias]["status_at_period_end"] == "revoking"
    assert json.loads(inventory[seeded["first"].alias]["approvers"])[0].startswith("approve by approver-a@example.com")

    summary = bundle.text("summary.html")
    assert "No check failed." in summary
    for control in ("CC6.1", "CC6.2", "CC6.3", "CC7.2", "CC8.1"):
        assert control in summary
    assert "OK " in bundle.text("audit_verify.txt")

    event = AuditEvent.objects.get(action="evidence.exported", target_id=str(export.pk))
    assert event.actor_id == auditor_user.pk
    assert event.data["sha256"] == export.sha256 and event.data["manifest_sha256"] == export.manifest_sha256


def test_the_start_service_queues_the_build_job_after_commit(admin_user, django_capture_on_commit_callbacks):
    today = timezone.now().date()
    with django_capture_on_commit_callbacks(execute=True):
        export = audit_services.evidence_export_start(actor=admin_user, period_start=today, period_end=today)
    export.refresh_from_db()
    assert export.status == EvidenceExport.Status.DONE
    assert [e.action for e in AuditEvent.objects.order_by("seq")][-3:] == [
        "evidence.export_requested",
        "audit.checkpoint_written",
        "evidence.exported",
    ]


def test_a_self_approved_key_is_a_failed_check_at_the_top_of_the_summary(world, open_model, auditor_user, open_bundle):
    member, approver = world.users["member_a"], world.users["approver_a"]
    honest = provisioned(approved_key(member, approver, world.team_a, [open_model]))
    forged = provisioned(approved_key(member, approver, world.team_a, [open_model]))
    # Someone with database access makes the requester the approver, behind the services' back.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE keys_approval SET approver_id = %s WHERE request_id = %s", [member.pk, forged.request_id]
        )

    export = build_export(auditor_user)
    bundle = open_bundle(export_path(export))
    assert export.failed_checks == 2  # the key's row in key_lifecycle and in samples
    rows = {row["key_alias"]: row for row in bundle.csv("key_lifecycle")}
    assert rows[forged.alias]["check_approver_not_requester"] == "FAIL"
    assert "approved by its own requester or owner" in rows[forged.alias]["check_detail"]
    assert rows[honest.alias]["check_approver_not_requester"] == "PASS"
    sample = {row["key_alias"]: row for row in bundle.csv("samples")}
    assert sample[forged.alias]["check_approver_not_requester"] == "FAIL"

    summary = bundle.text("summary.html")
    body = summary[summary.index("<body>") :]
    failed = body.index('id="failed-checks"')
    assert failed < body.index("Audit log integrity") < body.index("Files and controls")
    assert body.index("<h2") == body.index('<h2 id="failed-checks"'), "failed checks are the first section"
    fail_box = body[failed : body.index("Audit log integrity")]
    assert "check_approver_not_requester" in fail_box and f"key_alias={forged.alias}" in fail_box
    assert "key_lifecycle.csv" in fail_box and "CC6.2" in fail_box
    checks = bundle.manifest()["checks"]
    assert checks["failed"] == 2  # key_lifecycle and samples both show it
    assert {c["report"] for c in checks["by_check"]} == {"key_lifecycle", "samples"}


def test_a_key_created_before_its_approval_fails_the_order_check(world, auditor_user, open_bundle):
    key = VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"], approved_by=world.users["approver_a"])
    KeyRequest.objects.filter(pk=key.request_id).update(decided_at=key.created_at + timedelta(minutes=1))
    Approval.objects.filter(request_id=key.request_id).update(created_at=key.created_at + timedelta(minutes=1))
    bundle = open_bundle(export_path(build_export(auditor_user)))
    row = bundle.csv("key_lifecycle")[0]
    assert (row["check_approver_not_requester"], row["check_approved_before_created"]) == ("PASS", "FAIL")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL only")
@pytest.mark.django_db(transaction=True)  # a superuser tampers on a connection of its own
def test_a_tampered_audit_event_fails_the_chain_check_in_the_bundle(admin_user, auditor_user, open_bundle):
    write_events(5)
    with append_only_bypassed() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_label = %s WHERE seq = 3", ["someone-else@example.com"])

    export = build_export(auditor_user)
    assert export.status == EvidenceExport.Status.DONE and export.chain_ok is False
    bundle = open_bundle(export_path(export))
    assert bundle.text("audit_verify.txt").startswith("FAIL at event 3: content does not match its hash")
    manifest = bundle.manifest()
    assert manifest["audit_chain"]["ok"] is False and manifest["audit_chain"]["bad_seq"] == 3
    summary = bundle.text("summary.html")
    top = summary[: summary.index("Audit log integrity")]
    assert "check_audit_chain_intact" in top and "seq=3" in top
    assert "FAIL at event 3" in summary
    assert evidence_check.verify_bundle(bundle.path).ok  # the bundle itself is intact: it reports the broken log


# --- verify_evidence ----------------------------------------------------------------------------------


def _rewrite(path: Path, name: str, change) -> None:
    """A valid ZIP again, with one entry's bytes changed (as someone editing the evidence would)."""
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info.filename)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            target.writestr(info, change(data) if info.filename == name else data)


def test_export_evidence_command_writes_a_bundle_that_verify_evidence_accepts(world, open_model, tmp_path):
    provisioned(approved_key(world.users["member_a"], world.users["approver_a"], world.team_a, [open_model]))
    today = timezone.now().date().isoformat()
    out = tmp_path / "evidence.zip"
    code, stdout, _ = run("export_evidence", "--from", today, "--to", today, "--out", str(out), "--seed", "s1")
    assert code == 0 and out.is_file()
    export = EvidenceExport.objects.get()
    assert f"sha256 {export.sha256}" in stdout and "key_inventory: 1 rows" in stdout
    assert export.requested_by is None and export.requested_by_label.startswith("manage.py export_evidence")
    assert export.file_name == ""  # written where asked, not offered for download in the site
    assert AuditEvent.objects.filter(action="evidence.exported", target_id=str(export.pk)).exists()

    code, stdout, stderr = run("verify_evidence", str(out))
    assert code == 0, stderr
    assert stdout.startswith(f"OK {len(EXPECTED_FILES) - 1} files match manifest.json")
    exported = AuditEvent.objects.get(action="evidence.exported", target_id=str(export.pk))
    assert f"OK manifest.json is the one recorded for export #{export.pk} (audit event #{exported.seq})" in stdout


def test_a_file_edited_and_its_hash_rewritten_in_the_manifest_is_caught_against_the_audit_log(world, tmp_path):
    VirtualKeyFactory(
        team=world.team_a, owner=world.users["member_a"], approved_by=world.users["member_a"]
    )  # a failed check to hide
    today = timezone.now().date().isoformat()
    out = tmp_path / "evidence.zip"
    run("export_evidence", "--from", today, "--to", today, "--out", str(out))
    export = EvidenceExport.objects.get()
    # Someone turns the FAIL into a PASS and rewrites the manifest so every file hash matches again.
    with zipfile.ZipFile(out) as zf:
        original = zf.read("key_lifecycle.csv")
        manifest = json.loads(zf.read("manifest.json"))
    forged = original.replace(b"FAIL", b"PASS")
    assert b"FAIL" in original and b"FAIL" not in forged
    manifest["files"]["key_lifecycle.csv"]["sha256"] = hashlib.sha256(forged).hexdigest()
    _rewrite(out, "key_lifecycle.csv", lambda data: forged)
    _rewrite(out, "manifest.json", lambda data: json.dumps(manifest, indent=2).encode())

    code, stdout, stderr = run("verify_evidence", str(out), "--files-only")
    assert code == 0 and stdout.startswith("OK ")  # the files alone agree with the forged manifest...
    code, stdout, stderr = run("verify_evidence", str(out))
    assert code == 1  # ...but the manifest is not the one the audit log recorded for this export
    assert stderr.startswith("FAIL manifest.json: SHA-256") and f"recorded for export #{export.pk}" in stderr
    assert "the manifest was changed after the export" in stderr


def test_a_bundle_this_site_did_not_record_verifies_its_files_and_says_it_was_not_compared(admin_user, tmp_path):
    today = timezone.now().date().isoformat()
    out = tmp_path / "evidence.zip"
    run("export_evidence", "--from", today, "--to", today, "--out", str(out))
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["export_id"] = 987654
    _rewrite(out, "manifest.json", lambda data: json.dumps(manifest).encode())
    code, stdout, _ = run("verify_evidence", str(out))
    assert code == 0 and "NOTE export #987654 is not in this site's audit log" in stdout


def test_verify_evidence_names_the_file_with_one_byte_changed(admin_user, tmp_path):
    today = timezone.now().date().isoformat()
    out = tmp_path / "evidence.zip"
    run("export_evidence", "--from", today, "--to", today, "--out", str(out))

    def flip_one_byte(data: bytes) -> bytes:
        return data[:20] + bytes([data[20] ^ 0x01]) + data[21:]

    _rewrite(out, "key_inventory.csv", flip_one_byte)
    code, stdout, stderr = run("verify_evidence", str(out))
    assert code == 1 and stdout == ""
    assert stderr.startswith("FAIL key_inventory.csv: SHA-256")
    assert stderr.count("FAIL") == 1


def test_verify_evidence_names_the_file_whose_stored_bytes_were_changed_in_place(admin_user, tmp_path):
    today = timezone.now().date().isoformat()
    out = tmp_path / "evidence.zip"
    run("export_evidence", "--from", today, "--to", today, "--out", str(out))
    with zipfile.ZipFile(out) as zf:
        info = zf.getinfo("audit_log.json")
    raw = bytearray(out.read_bytes())
    # One byte inside the entry's compressed data, past its 30-byte local header, name and extra field.
    header = raw[info.header_offset : info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    raw[start + info.compress_size // 2] ^= 0xFF
    out.write_bytes(bytes(raw))
    code, _, stderr = run("verify_evidence", str(out))
    assert code == 1
    assert stderr.startswith("FAIL audit_log.json: ")


def test_verify_evidence_refuses_a_file_that_is_not_a_bundle(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    code, _, stderr = run("verify_evidence", str(junk))
    assert code == 1 and "junk.zip: not a readable ZIP file" in stderr
    with zipfile.ZipFile(tmp_path / "bare.zip", "w") as zf:
        zf.writestr("extra.csv", "a,b\n")
    code, _, stderr = run("verify_evidence", str(tmp_path / "bare.zip"))
    assert code == 1 and "manifest.json: missing" in stderr


def test_a_file_added_to_a_bundle_is_reported(admin_user, tmp_path):
    today = timezone.now().date().isoformat()
    out = tmp_path / "evidence.zip"
    run("export_evidence", "--from", today, "--to", today, "--out", str(out))
    with zipfile.ZipFile(out, "a") as zf:
        zf.writestr("extra.csv", "planted\n")
    code, _, stderr = run("verify_evidence", str(out))
    assert code == 1 and "FAIL extra.csv: in the bundle but not in the manifest" in stderr


# --- bad input and who may export ----------------------------------------------------------------------------


def test_a_period_that_ends_before_it_starts_is_refused_and_nothing_is_written(auditor_user, auditor_client):
    today = timezone.now().date()
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        audit_services.evidence_export_start(
            actor=auditor_user, period_start=today, period_end=today - timedelta(days=1)
        )
    assert refused.value.message_dict == {"period_end": ["The period ends before it starts."]}
    response = auditor_client.post(
        reverse("evidence_export_start"),
        {"period_start": today.isoformat(), "period_end": (today - timedelta(days=3)).isoformat(), "sample_size": 5},
    )
    assert response.status_code == 400
    assert "The period ends before it starts." in response.content.decode()
    with pytest.raises(CommandError, match="The period ends before it starts"):
        call_command("export_evidence", "--from", "2026-02-01", "--to", "2026-01-01", "--out", "/tmp/x.zip")
    assert EvidenceExport.objects.count() == 0
    assert AuditEvent.objects.count() == before


def test_a_period_in_the_future_or_a_bad_sample_size_is_refused(auditor_user):
    today = timezone.now().date()
    with pytest.raises(ValidationError, match="cannot end after today"):
        audit_services.evidence_export_start(
            actor=auditor_user, period_start=today, period_end=today + timedelta(days=1)
        )
    with pytest.raises(ValidationError, match="Give 0 or more keys"):
        audit_services.evidence_export_start(actor=auditor_user, period_start=today, period_end=today, sample_size=-1)
    assert EvidenceExport.objects.count() == 0 and AuditEvent.objects.count() == 0


def test_members_cannot_export_and_nothing_is_written(member_a_user, member_a_client, approver_a_client):
    today = timezone.now().date()
    with pytest.raises(PermissionDenied):
        audit_services.evidence_export_start(actor=member_a_user, period_start=today, period_end=today)
    for client in (member_a_client, approver_a_client):
        response = client.post(
            reverse("evidence_export_start"), {"period_start": today.isoformat(), "period_end": today.isoformat()}
        )
        assert response.status_code == 403
        assert client.get(reverse("evidence_export_list")).status_code == 403
    assert EvidenceExport.objects.count() == 0 and AuditEvent.objects.count() == 0


# --- pages: progress, download -------------------------------------------------------------------------------


def test_the_export_page_refreshes_itself_while_the_build_runs_then_offers_the_download(auditor_user, auditor_client):
    today = timezone.now().date()
    response = auditor_client.post(
        reverse("evidence_export_start"),
        {"period_start": today.isoformat(), "period_end": today.isoformat(), "sample_size": 10},
    )
    export = EvidenceExport.objects.get()
    detail = reverse("evidence_export_detail", args=[export.pk])
    assert response.status_code == 302 and response.url == f"{detail}?then=download"
    page = auditor_client.get(response.url).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in page and "<progress" in page  # queued: the job has not run
    assert "the download starts when the bundle is ready" in page

    EvidenceExport.objects.filter(pk=export.pk).update(
        status=EvidenceExport.Status.RUNNING, progress=42, step="writing key_lifecycle"
    )
    page = auditor_client.get(response.url).content.decode()
    assert '<meta http-equiv="refresh"' in page and "42% — writing key_lifecycle" in page

    EvidenceExport.objects.filter(pk=export.pk).update(status=EvidenceExport.Status.QUEUED)
    audit_services.evidence_export_build(export_id=export.pk)
    download_url = reverse("evidence_export_download", args=[export.pk])
    page = auditor_client.get(response.url).content.decode()  # built: the page starts the download once
    assert f'<meta http-equiv="refresh" content="0;url={download_url}">' in page
    page = auditor_client.get(detail).content.decode()  # opened again later: no refresh, a download link
    assert "http-equiv" not in page and f'href="{download_url}"' in page

    download = auditor_client.get(reverse("evidence_export_download", args=[export.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert "attachment" in download["Content-Disposition"]
    body = b"".join(download.streaming_content)
    assert zipfile.ZipFile(io.BytesIO(body)).testzip() is None
    assert AuditEvent.objects.filter(action="evidence.downloaded", actor=auditor_user).count() == 1


def test_a_failed_build_is_recorded_and_shown(auditor_user, auditor_client, monkeypatch):
    today = timezone.now().date()
    export = audit_services.evidence_export_start(actor=auditor_user, period_start=today, period_end=today)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(evidence, "build_bundle", broken)
    with pytest.raises(OSError, match="disk full"):
        audit_services.evidence_export_build(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == EvidenceExport.Status.FAILED and export.error == "OSError: disk full"
    assert AuditEvent.objects.filter(action="evidence.export_failed", target_id=str(export.pk)).exists()
    assert not list(Path(evidence.export_dir()).glob("*.part"))
    page = auditor_client.get(reverse("evidence_export_detail", args=[export.pk])).content.decode()
    assert "The build failed: OSError: disk full" in page
    assert auditor_client.get(reverse("evidence_export_download", args=[export.pk])).status_code == 404


def test_the_sweeper_sends_again_an_export_the_queue_lost_and_runs_it_once(
    auditor_user, django_capture_on_commit_callbacks
):
    today = timezone.now().date()
    export = audit_services.evidence_export_start(actor=auditor_user, period_start=today, period_end=today)
    assert audit_services.evidence_exports_sweep() == 0  # just queued: give the worker a moment
    later = timezone.now() + timedelta(minutes=3)
    with django_capture_on_commit_callbacks(execute=True):
        assert audit_services.evidence_exports_sweep(now=later) == 1  # in-process here: it runs at once
    export.refresh_from_db()
    assert export.status == EvidenceExport.Status.DONE
    assert audit_services.evidence_export_build(export_id=export.pk) == "not queued"  # a second delivery is a no-op
    assert AuditEvent.objects.filter(action="evidence.exported").count() == 1


def test_a_build_whose_worker_died_is_retried_then_given_up(auditor_user, django_capture_on_commit_callbacks):
    today = timezone.now().date()
    export = audit_services.evidence_export_start(actor=auditor_user, period_start=today, period_end=today)
    stale = timezone.now() - timedelta(hours=1)
    EvidenceExport.objects.filter(pk=export.pk).update(status="running", next_attempt_at=stale, attempts=1)
    with django_capture_on_commit_callbacks(execute=True):
        audit_services.evidence_exports_sweep(now=timezone.now() + timedelta(minutes=3))
    export.refresh_from_db()
    assert export.status == EvidenceExport.Status.DONE and export.attempts == 2
    other = audit_services.evidence_export_start(actor=auditor_user, period_start=today, period_end=today)
    EvidenceExport.objects.filter(pk=other.pk).update(status="running", next_attempt_at=stale, attempts=3)
    audit_services.evidence_exports_sweep()
    other.refresh_from_db()
    assert other.status == EvidenceExport.Status.FAILED and "gave up" in other.error


# --- older periods and team filters ------------------------------------------------------------------------------


def test_evidence_for_a_period_older_than_the_raw_ledger_says_it_comes_from_rollups(
    auditor_user, settings, open_bundle
):
    settings.LEDGER_RETENTION_MONTHS = 1
    today = timezone.now().date()
    old = build_export(auditor_user, period_start=today - timedelta(days=120), period_end=today - timedelta(days=90))
    manifest = open_bundle(export_path(old)).manifest()
    assert manifest["ledger"]["spend_source"] == "daily rollups (raw ledger pruned for this period)"
    assert "LEDGER_RETENTION_MONTHS=1" in manifest["ledger"]["note"]
    assert "comes from the daily rollups" in open_bundle(export_path(old)).text("summary.html")
    recent = build_export(auditor_user)
    assert open_bundle(export_path(recent)).manifest()["ledger"]["spend_source"] == "daily rollups"


def test_a_team_filter_narrows_the_key_reports_not_the_audit_log(world, auditor_user, open_bundle):
    VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"], approved_by=world.users["approver_a"])
    VirtualKeyFactory(team=world.team_b, owner=world.users["member_b"], approved_by=world.users["admin"])
    write_events(2)
    export = build_export(auditor_user, teams=[world.team_b])
    bundle = open_bundle(export_path(export))
    assert [row["team"] for row in bundle.csv("key_inventory")] == ["Team B"]
    assert bundle.manifest()["filters"]["teams"] == ["Team B"]
    assert "audit_log" not in bundle.manifest()["filters_apply_to"]
    # both test events, the export request and the checkpoint signed for it
    assert bundle.manifest()["row_counts"]["audit_log"] == 4


def test_csv_cells_that_look_like_formulas_are_neutralised_and_json_keeps_them(world, auditor_user, open_bundle):
    key = VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"], approved_by=world.users["approver_a"])
    KeyRequest.objects.filter(pk=key.request_id).update(purpose='=HYPERLINK("http://evil")')
    bundle = open_bundle(export_path(build_export(auditor_user)))
    assert bundle.csv("key_lifecycle")[0]["justification"] == '\'=HYPERLINK("http://evil")'
    assert bundle.json("key_lifecycle")["rows"][0]["justification"] == '=HYPERLINK("http://evil")'


def test_the_audit_log_extract_is_streamed_not_loaded(monkeypatch, auditor_user):
    """Rows are read with .iterator(): a report never calls list() on a whole queryset."""
    write_events(30)
    seen = []
    original = type(AuditEvent.objects.all()).iterator

    def spy(self, chunk_size=None):
        seen.append((self.model.__name__, chunk_size))
        return original(self, chunk_size=chunk_size)

    monkeypatch.setattr(type(AuditEvent.objects.all()), "iterator", spy)
    build_export(auditor_user)
    assert ("AuditEvent", reports.CHUNK) in seen
    assert ("VirtualKey", reports.CHUNK) in seen
    assert verify().ok
