"""A LiteLLM proxy without a database, as the real one (litellm[proxy], no DATABASE_URL) and the sandbox
(database off) both answer it: the client calls it NoDatabase, never a refused master key, and the pull
records "the gateway has no database" where admins read its errors. The same tests run against both, so
the sandbox cannot drift from the proxy unnoticed."""

from datetime import UTC, datetime, timedelta

import pytest

from budgets.models import PullState
from budgets.pull import spend_pull_run
from govsite.gateway.client import GatewayClient, NoDatabase, Unauthorized
from tests.litellm_proxy import start_real_proxy

MASTER = "sk-no-database-master-key"


@pytest.fixture(scope="module")
def proxy_without_a_database(tmp_path_factory):
    proxy = start_real_proxy(
        tmp_path_factory.mktemp("proxy-without-a-database"),
        "model_list:\n"
        "  - model_name: gpt-4o\n"
        "    litellm_params: {model: openai/gpt-4o, api_key: sk-fake, mock_response: 'hello'}\n"
        f"general_settings: {{master_key: {MASTER}}}\n",
    )
    try:
        yield proxy.url
    finally:
        proxy.stop()


@pytest.fixture(params=["sandbox", pytest.param("proxy", marks=pytest.mark.slow)])
def without_a_database(request) -> tuple[str, str]:
    """(url, master key) of a gateway that has no database."""
    if request.param == "proxy":
        return request.getfixturevalue("proxy_without_a_database"), MASTER
    sandbox = request.getfixturevalue("sandbox")
    sandbox.gateway_settings(database=False)
    return sandbox.url, sandbox.master_key


def _window() -> dict:
    now = datetime.now(UTC)
    return {"start": now - timedelta(hours=1), "end": now}


def test_spend_logs_v2_is_no_database_not_a_refused_key(without_a_database):
    url, master_key = without_a_database
    with GatewayClient(url, master_key, 10) as client, pytest.raises(NoDatabase) as caught:
        client.spend_logs_v2(**_window())

    assert caught.value.status == 401, "LiteLLM answers 401 here"
    assert not isinstance(caught.value, Unauthorized)
    assert caught.value.retryable is False
    assert "the gateway has no database" in str(caught.value)


def test_key_and_team_reads_are_no_database(without_a_database):
    url, master_key = without_a_database
    with GatewayClient(url, master_key, 10) as client:
        with pytest.raises(NoDatabase):
            client.key_list()
        with pytest.raises(NoDatabase):
            client.team_info(team_id="govsite-team-1")


@pytest.mark.django_db(transaction=True)
def test_the_pull_reports_the_gateway_has_no_database(without_a_database, settings):
    settings.LITELLM_URL, settings.LITELLM_MASTER_KEY = without_a_database
    result = spend_pull_run()

    assert result.error.startswith("NoDatabase: [401] the gateway has no database")
    state = PullState.objects.get()
    assert state.last_error == result.error and state.failures == 1
