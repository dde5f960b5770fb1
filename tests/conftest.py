"""Session-wide test setup: which fixture modules (``tests/fixtures/*.py``) are in play."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.redis",
    "tests.fixtures.gateway",
]
