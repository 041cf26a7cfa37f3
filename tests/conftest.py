"""Shared fixtures, and the rule that a conformance test never skips."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


# --- Conformance tests may not skip -----------------------------------------------------------------------------
# SpiceDB's conformance data is part of the repository (tests/conformance/data), so nothing a conformance test needs
# can be missing: a skipped conformance test would be a conformance check silently not run. Every test that reads
# the data carries the ``conformance`` marker (``pytestmark = pytest.mark.conformance`` in its module, or on the
# test); the hook below reports a skip of such a test (a ``pytest.skip``, a ``skipif``, an empty parameter list
# because no files were found) as a failure, always: locally, under ``make test`` and in CI (``.ci/run``), with no
# switch to forget. xfail is not a skip and stays allowed (known disagreements are listed, with reasons).
# Tests that need something outside the repository (the real SpiceDB peer in ../shared/peers) are not so marked
# and still skip, saying why.


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "conformance: reads SpiceDB's conformance data (tests/conformance/data); a skip is a failure")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("conformance"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"conformance test skipped ({reason}); the data is in tests/conformance/data, so a "
                           f"conformance test must run (see tests/conftest.py)")
    return report


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files (tests/dsl/cases/**/*.expected) from the current output instead of asserting; "
             "read the diff before committing",
    )


class Clock:
    """A settable clock for engines and stores (``clock.now += timedelta(...)``)."""

    def __init__(self, now=None) -> None:
        from datetime import UTC, datetime

        self.now = now or datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


# --- PostgreSQL -------------------------------------------------------------------------------------------------

PG_SERVER = __import__("os").environ.get("HEADWATER_TEST_PG", "postgresql://127.0.0.1:5432/test")
"""The PostgreSQL server the tests use (``HEADWATER_TEST_PG``; default the local one CI has). Each test run creates
its own databases on it and drops them; it is never skipped silently: an unreachable server fails the tests."""


class PgServer:
    """Creates throw-away databases on :data:`PG_SERVER` and drops them at the end of the run."""

    def __init__(self, base: str) -> None:
        import itertools
        import os

        self.base = base
        self._names = (f"headwater_test_{os.getpid()}_{n}" for n in itertools.count())
        self.created: list[str] = []

    def _admin(self):
        import psycopg

        try:
            return psycopg.connect(self.base, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            pytest.fail(f"PostgreSQL is not answering at {self.base} (set HEADWATER_TEST_PG to a server the tests "
                        f"may create databases on): {exc}", pytrace=False)

    def database(self) -> str:
        """A new empty database's URI."""
        from urllib.parse import urlsplit, urlunsplit

        name = next(self._names)
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        parts = urlsplit(self.base)
        return urlunsplit(parts._replace(path="/" + name))

    def drop_all(self) -> None:
        if not self.created:
            return
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
def pg_server():
    server = PgServer(PG_SERVER)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def pg_database(pg_server: PgServer) -> str:
    """One migrated database for the whole run (tests that need it empty truncate it: ``pg_empty``)."""
    from headwater.engine.store.postgres import migrate

    uri = pg_server.database()
    migrate(uri)
    return uri


def pg_truncate(uri: str) -> None:
    """Empty every table of the migrated database at ``uri`` (fast: the tests' fresh store)."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("TRUNCATE relationships, revisions, schemas")
