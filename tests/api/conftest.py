from tests.keys.conftest import open_model  # noqa: F401  (the key-lifecycle fixtures, shared)
