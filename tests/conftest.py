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
