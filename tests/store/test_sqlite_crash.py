"""A write killed halfway leaves the SQLite store at the revision before it or after it, never in between."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from headwater.engine.store import RelationshipFilter
from headwater.engine.store.sqlite import SqliteStore

SEED_ROWS = 5
HUGE_ROWS = 200_000

# Uses only the public store API. Revision 1 holds SEED_ROWS rows; revision 2 adds HUGE_ROWS more.
_WRITER = f"""
import sys
from headwater.engine.relationships import ObjectRef, Relationship, SubjectRef
from headwater.engine.store import Operation, Update
from headwater.engine.store.sqlite import SqliteStore

def touch(resource_id, subject_id):
    return Update(Operation.TOUCH, Relationship(ObjectRef("doc", resource_id), "viewer", SubjectRef("user", subject_id)))

store = SqliteStore(sys.argv[1])
store.write([touch("seed" + str(i), "tom") for i in range({SEED_ROWS})])
huge = [touch(str(i), "u" + str(i % 100)) for i in range({HUGE_ROWS})]
print("writing", flush=True)
store.write(huge)
print("written", flush=True)
"""


@pytest.mark.slow
def test_a_killed_write_is_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "headwater.db"
    wal = Path(f"{path}-wal")
    process = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "writing"
        # The huge transaction spills pages into the WAL long before it commits:
        # a WAL of a few MB means we are in the middle of it.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            if wal.exists() and wal.stat().st_size > 4 * 1024 * 1024:
                break
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    with SqliteStore(path) as store:
        head = store.head()
        with store.snapshot() as reader:
            count = reader.count(RelationshipFilter(resource_type="doc"))
        with store.snapshot(1) as reader:
            seed_count = reader.count(RelationshipFilter(resource_type="doc"))
    assert head in (1, 2)
    assert seed_count == SEED_ROWS
    assert count == {1: SEED_ROWS, 2: SEED_ROWS + HUGE_ROWS}[head]
