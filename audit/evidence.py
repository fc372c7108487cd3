"""The evidence bundle: one ZIP with a CSV and a JSON file per report, the audit chain's verification,
`summary.html` (failed checks first) and `manifest.json` (SHA-256 of every file).

Rows are written to the archive as they are read; a report's JSON is spooled to a temporary file on
disk while its CSV goes straight into the archive (a ZIP takes one entry at a time), then copied in.
Memory stays flat whatever the size of the period. The bundle also carries the signed audit checkpoint
written when the export started and its public key; `audit.evidence_check` verifies a bundle.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.template.loader import render_to_string

from audit import chain, checkpoints
from audit.models import AuditEvent
from audit.period import Period
from audit.reports import FAIL, ReportSpec, draw_sample, evidence_reports, iso, sample_population

FORMAT = "govsite-evidence/1"
MANIFEST = "manifest.json"
SUMMARY = "summary.html"
VERIFY_FILE = "audit_verify.txt"
CHECKPOINT_FILE = "audit_checkpoint.json"
PUBLIC_KEY_FILE = "audit_checkpoint_public_key.pem"
CONTROLS = {
    "CC6.1": "Logical access design: key inventory, roles",
    "CC6.2": "Granting access: requests, approvals, samples",
    "CC6.3": "Changing and removing access: revocations, leavers, reviews, budget approvals",
    "CC7.2": "Monitoring: audit log protected from alteration, spend and budget alerts",
    "CC8.1": "Change management: approvals of policy, role and budget changes",
}
EXAMPLES_PER_CHECK = 50
PROGRESS_EVERY = 5000
_CSV_RISKY = frozenset("=+-@\t\r")


def _environment() -> dict:
    """Where the bundle was made, which decides what it can claim: only PostgreSQL refuses changes to the
    audit table (its triggers); a bundle made with the sandbox gateway holds simulated keys and traffic."""
    postgres = connection.vendor == "postgresql"
    return {
        "database": connection.vendor,
        "audit_table_append_only_in_database": postgres,
        "gateway": "sandbox" if settings.GATEWAY_IS_SANDBOX else "litellm",
        "sandbox_gateway_in_use": bool(settings.GATEWAY_IS_SANDBOX),
    }


def generator_version() -> str:
    try:
        version = metadata.version("govsite")
    except metadata.PackageNotFoundError:
        # Running from a checkout that was not pip-installed: the version is in pyproject.toml.
        try:
            with (Path(settings.BASE_DIR) / "pyproject.toml").open("rb") as handle:
                version = tomllib.load(handle)["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            version = "unknown"
    return f"govsite {version} (audit.evidence, {FORMAT})"


def export_dir() -> Path:
    return Path(getattr(settings, "EVIDENCE_EXPORT_DIR", Path(settings.VAR_DIR) / "exports"))


# --- writing ----------------------------------------------------------------------------------------------


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through it."""

    def __init__(self, raw):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


@contextmanager
def _text(raw) -> Iterator[tuple[io.TextIOWrapper, _Hashing]]:
    """UTF-8 text onto `raw`, buffered, hashed on the way; `raw` is left open."""
    hashing = _Hashing(raw)
    buffered = io.BufferedWriter(hashing, buffer_size=256 * 1024)
    text = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
    try:
        yield text, hashing
    finally:
        text.flush()
        text.detach()
        buffered.flush()
        buffered.detach()


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder)


def _csv_cell(value) -> str:
    if value.__class__ is str:
        # A spreadsheet runs a cell that starts like a formula; the JSON file keeps the text as it is.
        return "'" + value if value[:1] in _CSV_RISKY else value
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@dataclass
class FileEntry:
    name: str
    sha256: str
    size: int
    rows: int | None = None
    report: str = ""
    controls: tuple[str, ...] = ()


@dataclass
class CheckTally:
    """Failed checks by (report, check), with the first few rows that failed each."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, report: str, check: str, example: str) -> None:
        key = (report, check)
        self.counts[key] = self.counts.get(key, 0) + 1
        examples = self.examples.setdefault(key, [])
        if len(examples) < EXAMPLES_PER_CHECK:
            examples.append(example)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class _Progress:
    def __init__(self, total: int, report: Callable[[int, str], None] | None):
        self.total = max(total, 1)
        self.done = 0
        self.report = report
        self.step = ""

    def start(self, step: str) -> None:
        self.step = step
        self._send()

    def advance(self, n: int = 1) -> None:
        before = self.done // PROGRESS_EVERY
        self.done += n
        if self.done // PROGRESS_EVERY != before:
            self._send()

    def _send(self) -> None:
        if self.report is not None:
            self.report(min(99, self.done * 100 // self.total), self.step)


def _entry(name: str, hashing: _Hashing, rows: int, spec: ReportSpec) -> FileEntry:
    return FileEntry(name, hashing.sha256.hexdigest(), hashing.size, rows, spec.name, spec.controls)


class BundleWriter:
    def __init__(self, zf: zipfile.ZipFile, stamp: datetime):
        self.zf = zf
        self.date_time = stamp.astimezone(UTC).timetuple()[:6]
        self.files: list[FileEntry] = []

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def write_bytes(self, name: str, data: bytes, **meta) -> FileEntry:
        with self.zf.open(self._info(name), "w", force_zip64=True) as raw:
            raw.write(data)
        entry = FileEntry(name, hashlib.sha256(data).hexdigest(), len(data), **meta)
        self.files.append(entry)
        return entry

    def write_report(self, spec: ReportSpec, rows: Iterator[dict], header: dict, tally: CheckTally, progress) -> int:
        """The report's CSV straight into the archive and its JSON into a spool file, in one pass."""
        checks = [c for c in spec.columns if c.startswith("check_")]
        count = 0
        with tempfile.TemporaryFile(prefix="govsite-evidence-") as spool:
            with _text(spool) as (json_text, json_hash):
                json_text.write(_json(header)[:-1] + ',"rows":[')
                with (
                    self.zf.open(self._info(f"{spec.name}.csv"), "w", force_zip64=True) as raw,
                    _text(raw) as (csv_text, csv_hash),
                ):
                    writer = csv.writer(csv_text, lineterminator="\r\n")
                    writer.writerow(spec.columns)
                    for row in rows:
                        writer.writerow([_csv_cell(row.get(column)) for column in spec.columns])
                        json_text.write(("\n" if count == 0 else ",\n") + _json(row))
                        for check in checks:
                            if row.get(check) == FAIL:
                                tally.add(spec.name, check, f"{spec.key_column}={row.get(spec.key_column)}")
                        count += 1
                        progress.advance()
                json_text.write(f'\n],"row_count":{count}}}\n')
            self.files.append(_entry(f"{spec.name}.csv", csv_hash, count, spec))
            spool.seek(0)
            with self.zf.open(self._info(f"{spec.name}.json"), "w", force_zip64=True) as raw:
                shutil.copyfileobj(spool, raw, 1024 * 1024)
            self.files.append(_entry(f"{spec.name}.json", json_hash, count, spec))
        return count


# --- the bundle ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleRequest:
    period: Period
    team_ids: list[int]
    team_names: list[str]
    sample_size: int
    sample_seed: str
    exported_by: str
    exported_at: datetime
    export_id: int | None = None
    retention_months: int = 25
    raw_ledger_from: datetime | None = None
    # The signed checkpoint written when this export started, with the public key that verifies it.
    checkpoint: checkpoints.Checkpoint | None = None
    public_key_pem: str = ""


@dataclass
class BundleResult:
    row_counts: dict[str, int]
    failed_checks: int
    chain: chain.VerifyResult
    manifest_sha256: str
    files: list[FileEntry]
    sample_ids: list[int]
    population: int


def _ledger_source(req: BundleRequest) -> tuple[str, str]:
    if req.raw_ledger_from is not None and req.period.start_at < req.raw_ledger_from:
        note = (
            f"Raw ledger rows before {iso(req.raw_ledger_from)} were pruned under the retention policy "
            f"(LEDGER_RETENTION_MONTHS={req.retention_months}); spend for this period comes from the daily rollups, "
            "which are kept for good."
        )
        return "daily rollups (raw ledger pruned for this period)", note
    note = "Spend comes from the daily rollups; the raw ledger rows behind them are still kept for this period."
    return "daily rollups", note


def build_bundle(out: Path, req: BundleRequest, progress: Callable[[int, str], None] | None = None) -> BundleResult:
    """Write the whole bundle to `out`. `progress(percent, step)` is called as it goes."""
    population = list(sample_population(req.period, req.team_ids or None).iterator(chunk_size=10000))
    size = min(req.sample_size, len(population))
    sample_ids = draw_sample(population, size=size, seed=req.sample_seed) if size else []
    spend_source, ledger_note = _ledger_source(req)
    specs = evidence_reports(req.period, req.team_ids or None, sample_ids=sample_ids, spend_source=spend_source)
    chain_units = AuditEvent.objects.count()
    track = _Progress(chain_units + sum(spec.count() for spec in specs), progress)
    track.start("verifying the audit chain")
    verified = chain.verify()
    track.advance(chain_units)

    tally = CheckTally()
    if not verified.ok:
        tally.add("audit_log", "check_audit_chain_intact", f"seq={verified.bad_seq}: {verified.reason}")
    filters = {"teams": req.team_names, "sample_size": req.sample_size, "sample_seed": req.sample_seed}
    period = {
        "start": req.period.start.isoformat(),
        "end": req.period.end.isoformat(),
        "from": iso(req.period.start_at),
        "before": iso(req.period.end_before),
        "timezone": "UTC",
    }
    row_counts: dict[str, int] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        writer = BundleWriter(zf, req.exported_at)
        for spec in specs:
            track.start(f"writing {spec.name}")
            header = {
                "report": spec.name,
                "title": spec.title,
                "controls": list(spec.controls),
                "description": spec.description,
                "query": spec.query,
                "period": period,
                "filters": filters if spec.team_filtered else {"teams": []},
                "generated_at": iso(req.exported_at),
                "generator": generator_version(),
                "columns": list(spec.columns),
            }
            row_counts[spec.name] = writer.write_report(spec, spec.rows(), header, tally, track)
        track.start("verification, summary and manifest")
        verify_text = (
            f"{verified.line()}\n"
            f"verified_at {iso(datetime.now(UTC))}\n"
            f"events {verified.count}\nhead {verified.head}\n"
            "Algorithm: audit.chain.verify walks every event in seq order; each hash is SHA-256 over the previous "
            "hash and the event's canonical JSON; the first missing, unlinked or altered event is reported.\n"
        )
        writer.write_bytes(VERIFY_FILE, verify_text.encode(), report="audit_log", controls=("CC7.2",))
        signed = None
        if req.checkpoint is not None:
            writer.write_bytes(CHECKPOINT_FILE, req.checkpoint.raw, report="audit_log", controls=("CC7.2",))
            writer.write_bytes(PUBLIC_KEY_FILE, req.public_key_pem.encode(), report="audit_log", controls=("CC7.2",))
            signed = {
                "file": CHECKPOINT_FILE,
                "public_key_file": PUBLIC_KEY_FILE,
                "public_key_fingerprint": checkpoints.fingerprint(checkpoints.load_public_pem(req.public_key_pem)),
                "checkpoint": req.checkpoint.number,
                "seq": req.checkpoint.seq,
                "head_hash": req.checkpoint.head_hash,
                "created_at": req.checkpoint.created_at,
            }
        checks = [
            {
                "report": report,
                "check": check,
                "failed": count,
                "examples": tally.examples[(report, check)],
                "controls": list(next((s.controls for s in specs if s.name == report), ("CC7.2",))),
            }
            for (report, check), count in sorted(tally.counts.items(), key=lambda item: (-item[1], item[0]))
        ]
        spec_by_name = {spec.name: spec for spec in specs}
        environment = _environment()
        summary = render_to_string(
            "audit/evidence_summary.html",
            {
                "req": req,
                "period": period,
                "environment": environment,
                "generator": generator_version(),
                "exported_at": iso(req.exported_at),
                "chain": verified,
                "checks": checks,
                "failed_total": tally.total,
                "files": [
                    {
                        "entry": entry,
                        "title": spec_by_name[entry.report].title if entry.report in spec_by_name else "",
                        "controls": ", ".join(entry.controls),
                    }
                    for entry in writer.files
                ],
                "controls": CONTROLS,
                "reports": specs,
                "row_counts": row_counts,
                "ledger_note": ledger_note,
                "sample_size": len(sample_ids),
                "population": len(population),
            },
        )
        writer.write_bytes(SUMMARY, summary.encode(), controls=tuple(CONTROLS))
        manifest = {
            "format": FORMAT,
            "generator": generator_version(),
            "export_id": req.export_id,
            "environment": environment,
            "exported_by": req.exported_by,
            "exported_at": iso(req.exported_at),
            "period": period,
            "filters": filters,
            "filters_apply_to": [spec.name for spec in specs if spec.team_filtered],
            "sample": {
                "seed": req.sample_seed,
                "requested_size": req.sample_size,
                "size": len(sample_ids),
                "population": len(population),
                "algorithm": "random.Random(seed).sample(ids of the keys created in the period, ascending, size)",
                "key_ids": sample_ids,
            },
            "row_counts": row_counts,
            "checks": {"failed": tally.total, "by_check": checks},
            "audit_chain": {
                "ok": verified.ok,
                "events": verified.count,
                "head_hash": verified.head,
                "chain_head_hash_at_export": chain.head_hash(),
                "bad_seq": verified.bad_seq,
                "reason": verified.reason,
                "result": verified.line(),
                "signed_checkpoint": signed,
            },
            "ledger": {
                "retention_months": req.retention_months,
                "raw_rows_kept_from": iso(req.raw_ledger_from),
                "spend_source": spend_source,
                "note": ledger_note,
            },
            "reports": {
                spec.name: {
                    "title": spec.title,
                    "controls": list(spec.controls),
                    "description": spec.description,
                    "query": spec.query,
                    "files": [f"{spec.name}.csv", f"{spec.name}.json"],
                }
                for spec in specs
            },
            "controls": CONTROLS,
            "files": {
                entry.name: {
                    "sha256": entry.sha256,
                    "bytes": entry.size,
                    **({"rows": entry.rows} if entry.rows is not None else {}),
                    "controls": list(entry.controls),
                }
                for entry in writer.files
            },
        }
        manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
        with zf.open(writer._info(MANIFEST), "w") as raw:
            raw.write(manifest_bytes)
    return BundleResult(
        row_counts=row_counts,
        failed_checks=tally.total,
        chain=verified,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        files=writer.files,
        sample_ids=sample_ids,
        population=len(population),
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()
