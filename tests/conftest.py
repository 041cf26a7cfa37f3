"""Shared fixtures: where the read-only conformance data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """``../shared/conformance``; tests that need it skip (with a reason) when it is absent."""
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance data not found at {CONFORMANCE} (it sits beside the repository in CI)")
    return CONFORMANCE


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
