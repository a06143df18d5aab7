"""Fixtures for the service's tests; add the service's own here.

The platform's fixtures (`settings`, `app`, `client`, the database, the
broker, credentials, real processes) come from `tests/platform/fixtures.py`.
"""

pytest_plugins = ["tests.platform.fixtures"]
