import pytest

# The key-lifecycle fixtures, shared.
from tests.keys.conftest import file_request, open_model, restricted_model  # noqa: F401


@pytest.fixture(autouse=True)
def _evidence_in_tmp(settings, tmp_path):
    """Evidence bundles made or downloaded through the API live in a temporary directory."""
    settings.EVIDENCE_EXPORT_DIR = tmp_path / "exports"
