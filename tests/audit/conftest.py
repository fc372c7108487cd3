"""Fixtures for the auditor workspace: bundles written under a temporary directory, jobs in-process,
keys made through the key services (so their audit events are real) or written directly (to place
them in the past), and the gateway fixtures shared with the key tests."""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from pathlib import Path

import pytest
from django.utils import timezone

from audit import services as audit_services
from audit.models import EvidenceExport
from keys import services as key_services
from keys.models import VirtualKey
from tests.adoption.conftest import flat_rate_kimi  # noqa: F401  (the dashboards' fixture, shared)
from tests.keys.conftest import (  # noqa: F401  (the key lifecycle's fixtures, shared)
    cheap_model,
    classification,
    live_gateway,
    open_model,
    request_input,
    second_approver_a,
)

_n = itertools.count(1)


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):
    """Bundles go to a temporary directory, and jobs run in-process (no Redis) in these tests."""
    settings.EVIDENCE_EXPORT_DIR = tmp_path / "exports"
    settings.REDIS_URL = ""
    settings.SITE_URL = "http://govsite.test"
    return settings.EVIDENCE_EXPORT_DIR


def approved_key(member, approver, team, models, **overrides) -> VirtualKey:
    """A key through the real services: request, approval, key row and its provisioning command."""
    request = key_services.key_request_create(requester=member, data=request_input(team, models, **overrides))
    return key_services.key_request_approve(request=request, approver=approver)


def provisioned(key: VirtualKey, when=None) -> VirtualKey:
    """Mark a key active as the gateway's answer would (without a gateway)."""
    VirtualKey.objects.filter(pk=key.pk).update(status=VirtualKey.Status.ACTIVE, provisioned_at=when or timezone.now())
    key.refresh_from_db()
    return key


def build_export(actor, **kwargs) -> EvidenceExport:
    """Ask for a bundle through the service, then run the job as the worker would."""
    today = timezone.now().date()
    kwargs.setdefault("period_start", today)
    kwargs.setdefault("period_end", today)
    export = audit_services.evidence_export_start(actor=actor, **kwargs)
    audit_services.evidence_export_build(export_id=export.pk)
    export.refresh_from_db()
    return export


def export_path(export: EvidenceExport) -> Path:
    path = audit_services.export_file(export)
    assert path is not None, f"export #{export.pk} has no file ({export.status}: {export.error})"
    return path


class Bundle:
    """An evidence ZIP opened for reading."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = zipfile.ZipFile(path)

    @property
    def names(self) -> set[str]:
        return set(self.zip.namelist())

    def text(self, name: str) -> str:
        return self.zip.read(name).decode()

    def manifest(self) -> dict:
        return json.loads(self.zip.read("manifest.json"))

    def json(self, report: str) -> dict:
        return json.loads(self.zip.read(f"{report}.json"))

    def csv(self, report: str) -> list[dict]:
        import csv

        return list(csv.DictReader(io.StringIO(self.text(f"{report}.csv"), newline="")))


@pytest.fixture
def open_bundle():
    opened = []

    def _open(path) -> Bundle:
        bundle = Bundle(Path(path))
        opened.append(bundle)
        return bundle

    yield _open
    for bundle in opened:
        bundle.zip.close()
