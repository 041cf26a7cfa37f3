"""A server that restarts under a running client: the caller sees right answers and no error within the retry budget;
with no server at all, the call fails UNAVAILABLE once the budget is spent. Timing assertions are generous upper
bounds (the machine is shared) and lower bounds that the waits themselves guarantee."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.client import AsyncClient, Client, EngineError, RemoteError, RetryPolicy
from headwater.engine.service.server import HeadwaterServer
from tests.service.conftest import RELATIONSHIPS, SCHEMA

from .conftest import free_port, start_server

OUTAGE = 1.0  # seconds between the old server's stop and the new one's start


class Restarting:
    """A server on a fixed port and SQLite file that, once :meth:`restart_soon` is called, stops after 0.3 s and
    starts again on the same port and file ``OUTAGE`` seconds later."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.address = f"127.0.0.1:{free_port()}"
        self.server: HeadwaterServer = start_server(db, self.address)
        self.thread = threading.Thread(target=self._restart, daemon=True)
        self.restarted = threading.Event()

    def _restart(self) -> None:
        time.sleep(0.3)
        self.server.stop(grace=0)
        time.sleep(OUTAGE)
        self.server = start_server(self.db, self.address)
        self.restarted.set()

    def restart_soon(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.thread.join(timeout=30)
        self.server.stop(grace=0)


@pytest.fixture()
def restarting(tmp_path: Path) -> Iterator[Restarting]:
    r = Restarting(tmp_path / "hw.db")
    with Client(r.address, timeout=10.0) as c:
        c.write_schema(SCHEMA)
        c.touch(*RELATIONSHIPS)
    yield r
    r.stop()


def _loop_ends(r: Restarting, started: float) -> bool:
    """Keep asking until the server is back and a second more has passed (at most 30 s)."""
    return time.monotonic() - started > 30 or (r.restarted.is_set() and time.monotonic() - started > OUTAGE + 2.5)


def test_sync_checks_ride_through_a_restart(restarting: Restarting) -> None:
    answers: list[tuple[bool, bool]] = []
    slowest = 0.0
    with Client(restarting.address, timeout=20.0) as c:
        assert c.check("document:readme", "view", "user:bob").allowed
        restarting.restart_soon()
        started = time.monotonic()
        while not _loop_ends(restarting, started):
            before = time.monotonic()
            answers.append((c.check("document:readme", "view", "user:bob").allowed,
                            c.check("document:readme", "view", "user:mallory").allowed))
            slowest = max(slowest, time.monotonic() - before)
            time.sleep(0.01)
        assert c.touch("document:after#viewer@user:zed").token  # writes that TOUCH are retried too
    assert restarting.restarted.is_set()
    assert answers and all(answer == (True, False) for answer in answers)
    assert slowest >= 0.2  # some call waited through the outage (no call can be answered while no server runs)


def test_async_checks_ride_through_a_restart(restarting: Restarting) -> None:
    async def main() -> tuple[list[tuple[bool, bool]], float]:
        answers: list[tuple[bool, bool]] = []
        slowest = 0.0
        async with AsyncClient(restarting.address, timeout=20.0) as c:
            assert (await c.check("document:readme", "view", "user:bob")).allowed
            restarting.restart_soon()
            started = time.monotonic()
            while not _loop_ends(restarting, started):
                before = time.monotonic()
                bob, mallory = await asyncio.gather(c.check("document:readme", "view", "user:bob"),
                                                    c.check("document:readme", "view", "user:mallory"))
                answers.append((bob.allowed, mallory.allowed))
                page = await c.lookup_resources("document", "view", "user:bob")  # a stream, retried by the loop
                assert "readme" in {r.resource_id for r in page.results}
                slowest = max(slowest, time.monotonic() - before)
                await asyncio.sleep(0.01)
        return answers, slowest

    answers, slowest = asyncio.run(main())
    assert restarting.restarted.is_set()
    assert answers and all(answer == (True, False) for answer in answers)
    assert slowest >= 0.2


def test_follow_resumes_after_a_restart_without_losing_a_change(restarting: Restarting) -> None:
    seen: list[str] = []
    with Client(restarting.address, timeout=20.0) as c:
        start = c.touch("document:w#viewer@user:a").token
        c.touch("document:w#viewer@user:b")

        def consume() -> None:
            for event in c.follow(start, timeout=OUTAGE + 5.0):
                seen.append(str(event.relationship))

        follower = threading.Thread(target=consume)
        follower.start()
        restarting.restart_soon()
        assert restarting.restarted.wait(30)
        c.touch("document:w#viewer@user:c")  # after the restart
        follower.join(60)
    assert seen == ["document:w#viewer@user:b", "document:w#viewer@user:c"]


def test_unavailable_once_the_retry_budget_is_spent() -> None:
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.1, max_backoff=0.4, jitter=0.5)
    with Client(f"127.0.0.1:{free_port()}", timeout=30.0, retry=policy) as c:
        started = time.monotonic()
        with pytest.raises(RemoteError) as caught:
            c.check("document:readme", "view", "user:bob")
        elapsed = time.monotonic() - started
    assert caught.value.code == "UNAVAILABLE"
    assert 0.3 <= elapsed < 20  # three waits of at least half of 0.1, 0.2, 0.4 s; far less than the 30 s deadline


def test_async_unavailable_once_the_retry_budget_is_spent() -> None:
    async def main() -> float:
        policy = RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=0.2)
        async with AsyncClient(f"127.0.0.1:{free_port()}", timeout=30.0, retry=policy) as c:
            started = time.monotonic()
            with pytest.raises(RemoteError) as caught:
                await c.read_relationships()
            assert caught.value.code == "UNAVAILABLE"
            return time.monotonic() - started

    assert asyncio.run(main()) < 20


def test_the_deadline_bounds_the_retries() -> None:
    policy = RetryPolicy(max_attempts=1000, initial_backoff=0.05, max_backoff=0.2)
    with Client(f"127.0.0.1:{free_port()}", timeout=1.0, retry=policy) as c:
        started = time.monotonic()
        with pytest.raises(EngineError) as caught:  # the last attempt has what is left of the deadline
            c.check("document:readme", "view", "user:bob")
        assert time.monotonic() - started < 15
    assert caught.value.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")  # type: ignore[attr-defined]


def test_create_is_not_retried_but_touch_is(monkeypatch: pytest.MonkeyPatch) -> None:
    import headwater.client.sync as sync

    waits: list[float] = []
    monkeypatch.setattr(sync.time, "sleep", waits.append)
    with Client(f"127.0.0.1:{free_port()}", timeout=30.0, retry=RetryPolicy(max_attempts=3)) as c:
        with pytest.raises(RemoteError):
            c.create("document:a#viewer@user:b")
        assert waits == []
        with pytest.raises(RemoteError):
            c.touch("document:a#viewer@user:b")
        assert len(waits) == 2
