"""The service tests' fixtures (servers on port 0 with the test tokens) for the governance tests."""

from tests.service.conftest import make_server, token_file  # noqa: F401
