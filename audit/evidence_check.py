"""Checking an evidence bundle: every file against its manifest (`verify_bundle`), the manifest against the
SHA-256 the audit log recorded for the export (`check_against_record`), and the bundle's signed audit
checkpoint, offline with the public key alone (`check_bundle_checkpoint`) or against the live chain
(`check_checkpoint_against_site`). `manage.py verify_evidence` runs them."""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from audit import chain, checkpoints
from audit.evidence import CHECKPOINT_FILE, MANIFEST, PUBLIC_KEY_FILE
from audit.models import AuditEvent


@dataclass(frozen=True)
class BundleCheck:
    ok: bool
    files: int
    problems: list[str]
    manifest_sha256: str = ""
    export_id: int | None = None


def verify_bundle(path: Path) -> BundleCheck:
    """Re-hash every file of a bundle and compare with its manifest; each problem names its file."""
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return BundleCheck(False, 0, [f"{path.name}: not a readable ZIP file ({exc})"])
    with zf:
        try:
            manifest_bytes = zf.read(MANIFEST)
            manifest = json.loads(manifest_bytes)
            listed = manifest["files"]
        except KeyError:
            return BundleCheck(False, 0, [f"{MANIFEST}: missing from the bundle, or it lists no files"])
        except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, TypeError) as exc:
            return BundleCheck(False, 0, [f"{MANIFEST}: unreadable ({exc})"])
        if not isinstance(listed, dict) or not all(isinstance(meta, dict) for meta in listed.values()):
            return BundleCheck(False, 0, [f"{MANIFEST}: its files are not a mapping of name to SHA-256"])
        export_id = manifest.get("export_id") if isinstance(manifest.get("export_id"), int) else None
        present = set(zf.namelist())
        for name, meta in listed.items():
            if name not in present:
                problems.append(f"{name}: listed in the manifest but missing from the bundle")
                continue
            digest = hashlib.sha256()
            try:
                with zf.open(name) as handle:
                    while block := handle.read(1024 * 1024):
                        digest.update(block)
            except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
                # A changed byte in the compressed data fails zlib or the entry's CRC-32 before the hash.
                problems.append(f"{name}: unreadable ({exc})")
                continue
            if digest.hexdigest() != meta.get("sha256"):
                problems.append(
                    f"{name}: SHA-256 {digest.hexdigest()} does not match the manifest's {meta.get('sha256')}"
                )
        for name in sorted(present - set(listed) - {MANIFEST}):
            problems.append(f"{name}: in the bundle but not in the manifest")
    return BundleCheck(not problems, len(listed), problems, hashlib.sha256(manifest_bytes).hexdigest(), export_id)


@dataclass(frozen=True)
class RecordCheck:
    """The bundle's manifest set against what the audit log recorded when the export was built.

    `ok` is None when there is nothing to compare with (no export number, another installation's bundle, or
    no database): the file hashes alone prove the files match the manifest, not that the manifest is the
    one this site wrote. A manifest rewritten after editing a file is caught here."""

    ok: bool | None
    message: str


def check_against_record(check: BundleCheck) -> RecordCheck:
    from django.db import DatabaseError

    if check.export_id is None:
        return RecordCheck(None, "the manifest names no export: not compared with the audit log")
    try:
        event = (
            AuditEvent.objects.filter(
                action="evidence.exported", target_type="audit.evidenceexport", target_id=str(check.export_id)
            )
            .order_by("seq")
            .values("seq", "data")
            .first()
        )
    except DatabaseError as exc:
        return RecordCheck(None, f"the database is not reachable ({type(exc).__name__}): not compared")
    if event is None:
        return RecordCheck(
            None, f"export #{check.export_id} is not in this site's audit log (another installation's bundle?)"
        )
    recorded = (event["data"] or {}).get("manifest_sha256")
    if recorded != check.manifest_sha256:
        return RecordCheck(
            False,
            f"{MANIFEST}: SHA-256 {check.manifest_sha256} is not the {recorded} recorded for export "
            f"#{check.export_id} in audit event #{event['seq']}: the manifest was changed after the export",
        )
    return RecordCheck(
        True, f"manifest.json is the one recorded for export #{check.export_id} (audit event #{event['seq']})"
    )


# --- the signed checkpoint --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointCheck:
    """The bundle's signed checkpoint: `ok` None when the bundle carries none (made before checkpoints)."""

    ok: bool | None
    message: str
    checkpoint: checkpoints.Checkpoint | None = None
    fingerprint: str = ""


def check_bundle_checkpoint(path: Path, public_key_pem: str | bytes | None = None) -> CheckpointCheck:
    """Offline: the checkpoint's signature, with `public_key_pem` when given (the key the site publishes on
    its audit page), else with the key the bundle carries; and that the manifest names the same head."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if CHECKPOINT_FILE not in names:
                return CheckpointCheck(None, f"the bundle carries no {CHECKPOINT_FILE} (made before checkpoints)")
            raw = zf.read(CHECKPOINT_FILE)
            bundled_key = zf.read(PUBLIC_KEY_FILE) if PUBLIC_KEY_FILE in names else None
            manifest = json.loads(zf.read(MANIFEST))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        return CheckpointCheck(False, f"{CHECKPOINT_FILE}: unreadable ({exc})")
    source = "the given public key" if public_key_pem else f"the bundle's {PUBLIC_KEY_FILE}"
    try:
        checkpoint = checkpoints.parse(raw)
        key_pem = public_key_pem or bundled_key
        if key_pem is None:
            return CheckpointCheck(False, f"{PUBLIC_KEY_FILE}: missing, and no public key was given")
        key = checkpoints.load_public_pem(key_pem)
    except checkpoints.CheckpointError as exc:
        return CheckpointCheck(False, f"{CHECKPOINT_FILE} or its key: {exc}")
    print_ = checkpoints.fingerprint(key)
    if not checkpoint.signed_by(key):
        return CheckpointCheck(False, f"{CHECKPOINT_FILE}: the signature does not verify with {source} ({print_})")
    named = ((manifest.get("audit_chain") or {}).get("signed_checkpoint") or {}) if isinstance(manifest, dict) else {}
    if (named.get("seq"), named.get("head_hash")) != (checkpoint.seq, checkpoint.head_hash):
        return CheckpointCheck(False, f"{MANIFEST}: its signed_checkpoint is not the one in {CHECKPOINT_FILE}")
    return CheckpointCheck(
        True,
        f"checkpoint {checkpoint.number} (event #{checkpoint.seq}, head {checkpoint.head_hash}) is signed by "
        f"{source} {print_}",
        checkpoint,
        print_,
    )


def check_checkpoint_against_site(signed: CheckpointCheck) -> list[str]:
    """On a site: the bundle was signed with this site's key, and the live chain still holds its head at its
    sequence number, intact up to there. Each problem found, named."""
    checkpoint = signed.checkpoint
    if checkpoint is None:
        return []
    problems = []
    site_key = checkpoints.public_key()
    if site_key is None:
        problems.append("this site has no checkpoint key: the bundle's signer cannot be compared with it")
    elif checkpoints.fingerprint(site_key) != signed.fingerprint:
        problems.append(
            f"{CHECKPOINT_FILE} was signed by {signed.fingerprint}, this site signs with "
            f"{checkpoints.fingerprint(site_key)}"
        )
    live, end = checkpoints.live_hashes([checkpoint.seq])
    problem = checkpoints.live_chain_problem(
        number_label=f"the bundle's checkpoint {checkpoint.number}",
        seq=checkpoint.seq,
        head_hash=checkpoint.head_hash,
        live=live,
        chain_end=end,
    )
    if problem:
        problems.append(problem)
    walked = chain.verify()
    if not walked.ok and walked.bad_seq is not None and walked.bad_seq <= checkpoint.seq:
        problems.append(f"the live chain is broken before the bundle's head: {walked.line()}")
    return problems
