"""The same checks give the same answers on MemoryStore and SqliteStore, with and without the cache.

Random relationships over fixed schemas that exercise unions, exclusions,
intersections, arrows, `.all()`, subject sets (with cycles), wildcards, caveats
and expiration; every (resource, permission, subject) combination is checked.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.engine import Config, Engine, MaxDepthExceededError
from headwater.engine.store.memory import MemoryStore
from headwater.engine.store.sqlite import SqliteStore

NOW = datetime(2030, 6, 1, tzinfo=UTC)

SCHEMA = """
use expiration

caveat level_ok(level int, need int) {
    level >= need
}

definition user {}

definition group {
    relation member: user | group#member | user with level_ok | user with expiration
}

definition folder {
    relation parent: folder
    relation viewer: user | user:* | group#member
    relation blocked: user | group#member
    permission view = viewer + parent->view - blocked
}

definition doc {
    relation folder: folder
    relation editor: user | group#member | user with level_ok
    relation reviewer: group
    relation owner: user with expiration | user
    permission edit = editor & folder->view
    permission review = reviewer.all(member)
    permission any_review = reviewer.any(member)
    permission read = edit + owner + any_review - nil
}
"""

USERS = ["u0", "u1", "u2"]
GROUPS = ["g0", "g1", "g2"]
FOLDERS = ["f0", "f1", "f2"]
DOCS = ["d0", "d1"]


def _suffix(draw: st.DrawFn, caveat: bool, expiration: bool) -> str:
    choice = draw(st.sampled_from(["none"] + (["caveat", "caveat_partial"] if caveat else [])
                                  + (["past", "future"] if expiration else [])))
    if choice == "caveat":
        return f'[level_ok:{{"need":{draw(st.integers(0, 3))},"level":{draw(st.integers(0, 3))}}}]'
    if choice == "caveat_partial":
        return f'[level_ok:{{"need":{draw(st.integers(0, 3))}}}]'
    if choice == "past":
        return "[expiration:" + (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ") + "]"
    if choice == "future":
        return "[expiration:" + (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ") + "]"
    return ""


@st.composite
def relationships(draw: st.DrawFn) -> list[str]:
    out: set[str] = set()
    keys: set[str] = set()

    def add(text: str, suffix: str = "") -> None:
        if text not in keys:
            keys.add(text)
            out.add(text + suffix)

    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["member_user", "member_wild", "member_group", "viewer", "blocked", "parent",
                                     "folder", "editor", "reviewer", "owner"]))
        g, g2 = draw(st.sampled_from(GROUPS)), draw(st.sampled_from(GROUPS))
        f, f2 = draw(st.sampled_from(FOLDERS)), draw(st.sampled_from(FOLDERS))
        d, u = draw(st.sampled_from(DOCS)), draw(st.sampled_from(USERS))
        subj = draw(st.sampled_from([f"user:{u}", f"group:{g2}#member"]))
        if kind == "member_user":
            suffix = _suffix(draw, caveat=True, expiration=False)
            if suffix == "":
                suffix = _suffix(draw, caveat=False, expiration=True)
            add(f"group:{g}#member@user:{u}", suffix)
        elif kind == "member_wild":
            add(f"folder:{f}#viewer@user:*")
        elif kind == "member_group":
            add(f"group:{g}#member@group:{g2}#member")
        elif kind in ("viewer", "blocked"):
            add(f"folder:{f}#{kind}@{subj}")
        elif kind == "parent":
            add(f"folder:{f}#parent@folder:{f2}")
        elif kind == "folder":
            add(f"doc:{d}#folder@folder:{f}")
        elif kind == "editor":
            add(f"doc:{d}#editor@{subj}", _suffix(draw, caveat=subj.startswith("user"), expiration=False))
        elif kind == "reviewer":
            add(f"doc:{d}#reviewer@group:{g}")
        else:
            add(f"doc:{d}#owner@user:{u}", _suffix(draw, caveat=False, expiration=True))
    return sorted(out)


CHECKS = ([(f"group:{g}", "member") for g in GROUPS] + [(f"folder:{f}", "view") for f in FOLDERS]
          + [(f"doc:{d}", p) for d in DOCS for p in ("edit", "review", "any_review", "read")])
SUBJECTS = [f"user:{u}" for u in USERS] + [f"group:{g}#member" for g in GROUPS]
CONTEXTS = [None, {"level": 2}]


def _answers(engine: Engine) -> list[str]:
    out = []
    for resource, permission in CHECKS:
        for subject in SUBJECTS:
            for context in CONTEXTS:
                try:
                    r = engine.check(resource, permission, subject, context=context)
                    out.append(f"{r.permissionship.name}{list(r.missing_context)}")
                except MaxDepthExceededError as exc:  # a cycle through the `- blocked` exclusion
                    out.append(f"ERROR {type(exc).__name__}")
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(relationships())
def test_memory_sqlite_cached_uncached_agree(rels: list[str]) -> None:
    clock = lambda: NOW  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        engines = [
            Engine(MemoryStore(clock=clock), clock=clock, config=Config.of(cache_size=0)),
            Engine(MemoryStore(clock=clock), clock=clock),
            Engine(SqliteStore(Path(tmp) / "a.db"), clock=clock, config=Config.of(cache_size=0)),
            Engine(SqliteStore(Path(tmp) / "b.db"), clock=clock),
        ]
        try:
            for e in engines:
                e.write_schema(SCHEMA)
                if rels:
                    e.touch(*rels)
            reference = _answers(engines[0])
            for e in engines[1:]:
                assert _answers(e) == reference
            # the cached engines answer again from a warm cache: still the same
            assert _answers(engines[1]) == reference
            assert _answers(engines[3]) == reference
        finally:
            for e in engines:
                e.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])
@given(relationships())
def test_postgresql_agrees_with_memory(pg_database: str, rels: list[str]) -> None:
    """The PostgreSQL reader (objects read whole, many in one query, the read-ahead of the groups rows name) gives
    the memory store's answers, with and without the cache."""
    from headwater.engine.store.postgres import PostgresStore

    from tests.conftest import pg_truncate

    clock = lambda: NOW  # noqa: E731
    pg_truncate(pg_database)
    engines = [Engine(MemoryStore(clock=clock), clock=clock, config=Config.of(cache_size=0)),
               Engine(PostgresStore(pg_database, clock=clock, pool_size=2), clock=clock,
                      config=Config.of(cache_size=0))]
    try:
        for e in engines:
            e.write_schema(SCHEMA)
            if rels:
                e.touch(*rels)
        assert _answers(engines[1]) == _answers(engines[0])
    finally:
        for e in engines:
            e.close()
