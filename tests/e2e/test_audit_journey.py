"""Journey c: an auditor draws a sample of key approvals and downloads an evidence bundle whose
manifest verifies (and a bundle changed afterwards does not)."""

import re
import zipfile

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install the dev extra")

from playwright.sync_api import expect  # noqa: E402

from tests.e2e import flows  # noqa: E402

SAMPLES_URL = "/audit/samples/"
EVIDENCE_URL = "/audit/evidence/"

pytestmark = pytest.mark.slow  # a server, a worker, a gateway and a browser


def test_auditor_draws_a_sample_and_downloads_evidence_that_verifies(people, shots, e2e_site, tmp_path):
    # Something to sample: a key request decided this period.
    omar = people.login("omar")
    request_id = flows.request_key(omar, team="Platform", purpose="Aider for the infra repo")
    paul = people.login("paul")
    flows.approve_key_request(paul, request_id, requester="Omar Ops")

    aubrey = people.login("aubrey")  # auditor: reads everything, changes nothing
    flows.open_menu_link(aubrey, "Audit", "Audit log")
    expect(aubrey.get_by_text("key_request.approved").first).to_be_visible()
    shots(aubrey, "auditor reads the audit log")

    workspace = aubrey.get_by_role("navigation", name="Auditor workspace")
    workspace.get_by_role("link", name="Samples").click()
    expect(aubrey).to_have_url(re.compile(re.escape(SAMPLES_URL) + "$"))
    aubrey.get_by_label("Population").select_option(value="key_creations")
    aubrey.get_by_label("Sample size").fill("1")
    shots(aubrey, "auditor sets up a sample")
    aubrey.get_by_role("button", name=re.compile(r"Draw( a)? sample", re.I)).click()
    expect(aubrey.get_by_role("heading", name=re.compile(r"^Sample", re.I))).to_be_visible()
    expect(aubrey.get_by_role("link", name=f"#{request_id}")).to_be_visible()
    shots(aubrey, "sample drawn")

    aubrey.get_by_role("navigation", name="Auditor workspace").get_by_role("link", name="Evidence exports").click()
    expect(aubrey).to_have_url(re.compile(re.escape(EVIDENCE_URL) + "$"))
    shots(aubrey, "evidence export page")
    # The export is built by the worker; its page follows the progress and starts the download when done.
    with aubrey.expect_download(timeout=90_000) as download_info:
        aubrey.get_by_role("button", name="Export evidence bundle").click()
    bundle = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(bundle)
    assert bundle.suffix == ".zip", bundle.name
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert any("manifest" in name.lower() for name in names), names
    shots(aubrey, "evidence bundle downloaded")

    verified = e2e_site.manage("verify_evidence", str(bundle))
    assert re.search(r"\b(ok|verified|valid)\b", verified.stdout, re.I), verified.stdout

    # Change one file of the bundle after the fact: the manifest no longer verifies.
    tampered = tmp_path / f"tampered-{bundle.name}"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(tampered, "w") as target:
        victim = next(name for name in names if "manifest" not in name.lower() and not name.endswith("/"))
        for item in source.infolist():
            data = source.read(item.filename)
            target.writestr(item, data + b"\n" if item.filename == victim else data)
    with pytest.raises(AssertionError, match="verify_evidence"):
        e2e_site.manage("verify_evidence", str(tampered))
