"""The client tests of tests/gateway/test_client.py, run against a real LiteLLM proxy.

Set LITELLM_URL and LITELLM_MASTER_KEY to a proxy with a database (virtual keys need one); without
them every test here is skipped. The test bodies are not copied: the functions are taken from the
sandbox module and the `gateway` fixture they use is parametrized to "live". Tests that need the
sandbox's fault injection skip themselves on a real proxy.
"""

import pytest

from tests.gateway import test_client as shared

pytestmark = [pytest.mark.live, pytest.mark.parametrize("gateway", ["live"], indirect=True)]

for _name in dir(shared):
    if _name.startswith("test_"):
        globals()[_name] = getattr(shared, _name)
