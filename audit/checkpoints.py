"""Signed checkpoints of the audit chain, kept outside the database (in the spirit of CloudTrail's digest files).

A checkpoint says "event #seq of the chain had hash H at time T", carries the SHA-256 of the checkpoint before
it, and is signed with an Ed25519 key the database never holds (`AUDIT_CHECKPOINT_KEY` or the PEM file
`AUDIT_CHECKPOINT_KEY_FILE`). One file per checkpoint in `AUDIT_CHECKPOINT_DIR`, created once and never
rewritten; each is also recorded in the chain (`audit.checkpoint_written`, with the file's SHA-256), so a
deleted newest file is missed. A database superuser can rebuild the chain and recompute every hash, but
cannot sign: `manage.py audit_verify` sets the chain against the checkpoints (`verify_checkpoints`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

import audit
from audit import chain
from audit.models import AuditEvent

log = logging.getLogger(__name__)

FORMAT = "govsite-audit-checkpoint/1"
ACTION = "audit.checkpoint_written"
GENESIS_SHA256 = "0" * 64
_FILE = re.compile(r"^checkpoint-(\d{12})\.json$")
_SIGNED_FIELDS = ("format", "checkpoint", "seq", "head_hash", "created_at", "prev_checkpoint_sha256", "reason")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read as one."""


def checkpoint_dir() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR)


def file_name(number: int) -> str:
    return f"checkpoint-{number:012d}.json"


# --- the key ------------------------------------------------------------------------------------------------


def _parse_private(text: str, source: str) -> Ed25519PrivateKey:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{source} is not an Ed25519 private key (PEM, or 32 bytes in base64)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{source} is not an Ed25519 private key")
    return key


def _generate(path: Path) -> None:
    """A new key file, readable by its owner only; a concurrent process that made one first wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(part, path)  # fails if the file exists: a key is never replaced
        log.warning("audit checkpoints: generated a new signing key at %s", path)
    except FileExistsError:
        pass
    finally:
        part.unlink()


def private_key(*, create: bool = False) -> Ed25519PrivateKey | None:
    """The signing key: `AUDIT_CHECKPOINT_KEY`, else the file `AUDIT_CHECKPOINT_KEY_FILE` (made on first
    use when `create`). None when there is none yet."""
    if settings.AUDIT_CHECKPOINT_KEY:
        return _parse_private(settings.AUDIT_CHECKPOINT_KEY, "AUDIT_CHECKPOINT_KEY")
    path = Path(settings.AUDIT_CHECKPOINT_KEY_FILE)
    if not path.exists():
        if not create:
            return None
        _generate(path)
    return _parse_private(path.read_text(), f"AUDIT_CHECKPOINT_KEY_FILE ({path})")


def public_key() -> Ed25519PublicKey | None:
    key = private_key()
    return key.public_key() if key is not None else None


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_pem(text: str | bytes) -> Ed25519PublicKey:
    data = text.encode() if isinstance(text, str) else text
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise CheckpointError("not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError("not an Ed25519 public key")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


# --- one checkpoint -----------------------------------------------------------------------------------------


def _canonical(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Checkpoint:
    number: int
    seq: int
    head_hash: str
    created_at: str
    prev_sha256: str
    reason: str
    signature: bytes
    raw: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def name(self) -> str:
        return file_name(self.number)

    def body(self) -> dict:
        return {
            "format": FORMAT,
            "checkpoint": self.number,
            "seq": self.seq,
            "head_hash": self.head_hash,
            "created_at": self.created_at,
            "prev_checkpoint_sha256": self.prev_sha256,
            "reason": self.reason,
        }

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(self.signature, _canonical(self.body()))
        except InvalidSignature:
            return False
        return True


def parse(raw: bytes) -> Checkpoint:
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"not a {FORMAT} file")
        missing = [name for name in (*_SIGNED_FIELDS, "signature") if name not in data]
        if missing:
            raise CheckpointError(f"lacks {', '.join(missing)}")
        checkpoint = Checkpoint(
            number=int(data["checkpoint"]),
            seq=int(data["seq"]),
            head_hash=str(data["head_hash"]),
            created_at=str(data["created_at"]),
            prev_sha256=str(data["prev_checkpoint_sha256"]),
            reason=str(data["reason"]),
            signature=base64.b64decode(data["signature"], validate=True),
            raw=raw,
        )
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"unreadable ({exc})") from exc
    return checkpoint


def _sign(key: Ed25519PrivateKey, body: dict) -> bytes:
    signature = base64.b64encode(key.sign(_canonical(body))).decode()
    return _canonical({**body, "signature": signature}) + b"\n"


def _numbered_files(directory: Path) -> dict[int, Path]:
    if not directory.is_dir():
        return {}
    found = {}
    for path in directory.iterdir():
        match = _FILE.match(path.name)
        if match:
            found[int(match[1])] = path
    return found


def latest() -> Checkpoint | None:
    files = _numbered_files(checkpoint_dir())
    if not files:
        return None
    try:
        return parse(files[max(files)].read_bytes())
    except CheckpointError:
        return None


@transaction.atomic(durable=True)
def checkpoint_write(*, reason: str, only_if_new: bool = False) -> Checkpoint | None:
    """Sign the chain's head into a new checkpoint file and record it in the chain.

    The chain is locked while this runs (`chain.locked_head`), so checkpoints are numbered and linked one
    after the other whoever writes them. With `only_if_new` (the schedule), nothing is written when no event
    but checkpoints' own came after the last checkpoint."""
    seq, head = chain.locked_head()
    directory = checkpoint_dir()
    files = _numbered_files(directory)
    # The chain's record counts too: a newest file that was deleted leaves its number taken and its gap visible.
    recorded = AuditEvent.objects.filter(action=ACTION).order_by("-seq").values_list("data", flat=True).first() or {}
    recorded_number = int(recorded.get("checkpoint") or 0)
    number = max(max(files, default=0), recorded_number) + 1
    if number - 1 in files:
        previous_raw = files[number - 1].read_bytes()
        prev_sha256 = hashlib.sha256(previous_raw).hexdigest()
        try:
            last_seq = parse(previous_raw).seq
        except CheckpointError:
            last_seq = 0
    elif recorded_number == number - 1 and recorded_number:
        prev_sha256, last_seq = str(recorded.get("sha256")), int(recorded.get("seq") or 0)
    else:
        prev_sha256, last_seq = GENESIS_SHA256, 0
    if only_if_new and number > 1 and not AuditEvent.objects.filter(seq__gt=last_seq).exclude(action=ACTION).exists():
        return None
    body = {
        "format": FORMAT,
        "checkpoint": number,
        "seq": seq,
        "head_hash": head,
        "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "prev_checkpoint_sha256": prev_sha256,
        "reason": reason[:200],
    }
    raw = _sign(private_key(create=True), body)
    directory.mkdir(parents=True, exist_ok=True)
    # O_EXCL: a checkpoint file is created once and never written again.
    fd = os.open(directory / file_name(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    checkpoint = parse(raw)
    audit.record(
        action=ACTION,
        target_type="audit.checkpoint",
        target_id=number,
        target_label=checkpoint.name,
        data={"checkpoint": number, "seq": seq, "head_hash": head, "sha256": checkpoint.sha256, "reason": reason},
    )
    return checkpoint


# --- checking -----------------------------------------------------------------------------------------------


def live_chain_problem(*, number_label: str, seq: int, head_hash: str, live: dict[int, str], chain_end: int) -> str:
    """What the live chain says about a signed head: '' when event #seq still has that hash."""
    if seq == 0:
        return ""
    if seq not in live:
        return (
            f"events missing after {number_label} (truncation): it signed event #{seq}, "
            f"the chain {'ends at #' + str(chain_end) if chain_end else 'is empty'}"
        )
    if live[seq] != head_hash:
        return (
            f"the chain does not contain {number_label}'s head (rewritten): event #{seq} has hash {live[seq]}, "
            f"the checkpoint signed {head_hash}"
        )
    return ""


def live_hashes(seqs: Iterable[int]) -> tuple[dict[int, str], int]:
    """{seq: hash} of the given events that exist, and the chain's last seq."""
    wanted = sorted(set(seqs))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 1000):
        found.update(AuditEvent.objects.filter(seq__in=wanted[start : start + 1000]).values_list("seq", "hash"))
    end = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    return found, end


@dataclass(frozen=True)
class CheckpointReport:
    checkpoints: int
    problems: list[str]
    last: Checkpoint | None
    key_fingerprint: str


def verify_checkpoints() -> CheckpointReport:
    """Every checkpoint file against the key, the one before it, its record in the chain and the chain."""
    directory = checkpoint_dir()
    files = _numbered_files(directory)
    recorded = {}
    for event in AuditEvent.objects.filter(action=ACTION).only("seq", "target_id", "data"):
        if event.target_id.isdigit():
            recorded[int(event.target_id)] = event
    problems: list[str] = []
    try:
        key = public_key()
    except ImproperlyConfigured as exc:
        return CheckpointReport(len(files), [str(exc)], None, "")
    if key is None and (files or recorded):
        problems.append(f"no checkpoint key at {settings.AUDIT_CHECKPOINT_KEY_FILE}: signatures cannot be checked")
    parsed: dict[int, Checkpoint] = {}
    for number in range(1, max([*files, *recorded], default=0) + 1):
        event = recorded.get(number)
        if number not in files:
            where = f"recorded in audit event #{event.seq}" if event else "the numbering skips it"
            problems.append(f"checkpoint {number} ({file_name(number)}) is missing from {directory} ({where})")
            continue
        raw = files[number].read_bytes()
        try:
            checkpoint = parse(raw)
        except CheckpointError as exc:
            problems.append(f"checkpoint {number} ({file_name(number)}) was altered: {exc}")
            continue
        if checkpoint.number != number:
            problems.append(f"checkpoint {number} ({file_name(number)}) was altered: it says it is {checkpoint.number}")
            continue
        if key is not None and not checkpoint.signed_by(key):
            problems.append(
                f"checkpoint {number} ({file_name(number)}): the signature does not verify with the key "
                f"{fingerprint(key)} (the file was altered or signed by another key)"
            )
            continue
        if event is None:
            problems.append(
                f"checkpoint {number} is not recorded in the audit chain "
                f"(its event, written just after #{checkpoint.seq}, was removed)"
            )
        elif (event.data or {}).get("sha256") != checkpoint.sha256:
            problems.append(
                f"checkpoint {number} ({file_name(number)}) was altered: its SHA-256 {checkpoint.sha256} is not "
                f"the {(event.data or {}).get('sha256')} recorded in audit event #{event.seq}"
            )
        previous = parsed.get(number - 1)
        expected_prev = previous.sha256 if previous else (GENESIS_SHA256 if number == 1 else None)
        if expected_prev is not None and checkpoint.prev_sha256 != expected_prev:
            problems.append(f"checkpoint {number} does not follow checkpoint {number - 1}: the previous hash differs")
        parsed[number] = checkpoint
    live, end = live_hashes(checkpoint.seq for checkpoint in parsed.values())
    for number, checkpoint in parsed.items():
        problem = live_chain_problem(
            number_label=f"checkpoint {number}",
            seq=checkpoint.seq,
            head_hash=checkpoint.head_hash,
            live=live,
            chain_end=end,
        )
        if problem:
            problems.append(problem)
    last = parsed[max(parsed)] if parsed else None
    return CheckpointReport(len(files), problems, last, fingerprint(key) if key is not None else "")
