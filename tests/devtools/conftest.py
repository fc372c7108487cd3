import pytest


@pytest.fixture(scope="module")
def litellm():
    import litellm  # slow to import; only this module's cost checks need it

    return litellm
