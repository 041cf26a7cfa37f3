"""The PostgreSQL store's tables, as numbered migrations that ``headwater migrate`` applies in order.

Unlike SQLite (which migrates itself on open), a PostgreSQL database is shared by
several servers and owned by an operator, so its tables change only when
``headwater migrate --db URI`` runs (:meth:`~headwater.engine.pgdb.Database.migrate`:
one transaction, under an advisory lock, recorded in :data:`MIGRATIONS_TABLE`); a
server refuses a database that is behind or ahead of :data:`LATEST_VERSION`.
Released migrations are never edited: a change is a new migration at the end.

The layout is SQLite's (``migrations.py``), with PostgreSQL types: every text
column that takes part in a key is ``COLLATE "C"``, so keys sort by code point
as SpiceDB lists them whatever the database's default collation is. Each of the
evaluator's reads has its index, and ``tests/store/test_postgres.py`` checks
with ``EXPLAIN`` that none of them scans the relationships table.

Example::

    >>> [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    True
"""

from __future__ import annotations

from ..pgdb import Migration

__all__ = ["LATEST_VERSION", "MIGRATIONS", "MIGRATIONS_TABLE"]

MIGRATIONS_TABLE = "headwater_migrations"
"""The table recording the applied migrations (version, name, applied_at)."""

_KEY = "resource_type, resource_id, relation, subject_type, subject_id, subject_relation"

_INITIAL = Migration(
    1,
    "relationships, revisions and schemas",
    (
        # One row per write transaction. Revision 0 (the empty store) is inserted by the first server to open it.
        """
        CREATE TABLE revisions (
            revision        BIGINT PRIMARY KEY,
            committed_at_us BIGINT NOT NULL,           -- microseconds since 1970-01-01T00:00:00Z
            metadata        TEXT NOT NULL DEFAULT '{}' -- JSON object of strings
        )
        """,
        "CREATE INDEX revisions_by_time ON revisions (committed_at_us)",
        # One row per version of a relationship, visible at revision R when
        # created_rev <= R and (deleted_rev IS NULL or deleted_rev > R). The primary key keeps an object's rows
        # together in its index: reading an object whole, or one relation of it, is one index range.
        f"""
        CREATE TABLE relationships (
            resource_type    TEXT COLLATE "C" NOT NULL,
            resource_id      TEXT COLLATE "C" NOT NULL,
            relation         TEXT COLLATE "C" NOT NULL,
            subject_type     TEXT COLLATE "C" NOT NULL,
            subject_id       TEXT COLLATE "C" NOT NULL,
            subject_relation TEXT COLLATE "C" NOT NULL,   -- '' when the subject has no relation
            caveat_name      TEXT,                          -- NULL when there is no caveat
            caveat_context   TEXT,                          -- canonical JSON object
            expires_at_us    BIGINT,                        -- NULL when it never expires
            created_rev      BIGINT NOT NULL,
            deleted_rev      BIGINT,                        -- NULL while not deleted
            PRIMARY KEY ({_KEY}, created_rev)
        )
        """,
        # At most one not-deleted row per key; also finds the row a write replaces.
        f"CREATE UNIQUE INDEX relationships_live_key ON relationships ({_KEY}) WHERE deleted_rev IS NULL",
        # Reverse reads (lookups, a subject's relationships), ordered by resource id.
        """
        CREATE INDEX relationships_by_subject ON relationships (
            subject_type, subject_id, subject_relation, resource_type, relation, resource_id
        )
        """,
        # Only rows whose subject is a subject set: a relation with thousands of plain subjects is not read for them.
        f"CREATE INDEX relationships_subject_sets ON relationships ({_KEY}) WHERE subject_relation <> ''",
        # changes() and gc().
        "CREATE INDEX relationships_by_created_rev ON relationships (created_rev)",
        "CREATE INDEX relationships_by_deleted_rev ON relationships (deleted_rev) WHERE deleted_rev IS NOT NULL",
        """
        CREATE TABLE schemas (
            version  INTEGER PRIMARY KEY,      -- 1, 2, 3...
            revision BIGINT NOT NULL UNIQUE,   -- the revision that wrote it
            text     TEXT NOT NULL,
            digest   TEXT NOT NULL
        )
        """,
    ),
)

# The audit trail (engine/audit/pg_storage.py, docs/audit.md): the decision log and change history of an audited
# database, in the same database, one hash chain shared by every server. The columns after `hash` are computed
# from `body` by PostgreSQL (they cannot be written apart from it, so there is no second copy to tamper with) and
# exist for the indexes; `\u0000`, which PostgreSQL's text cannot hold, is read as U+FFFD there (never in `body`).
# The head's and the identity's rows are written when the log is started (the first audited open).
_AUDIT_FIELD = "replace(body, E'\\\\u0000', E'\\\\ufffd')::json ->> '{}'"
_AUDIT = Migration(
    2,
    "the audit trail",
    (
        f"""
        CREATE TABLE audit_records (
            id         BIGINT PRIMARY KEY,   -- the record's place in the chain: 1, 2, 3...
            body       TEXT NOT NULL,        -- canonical JSON of the content (includes "id")
            prev_hash  TEXT NOT NULL,        -- the hash this record links to ('' for a checkpoint)
            hash       TEXT NOT NULL,        -- sha256(prev_hash || "\\n" || body)
            kind       TEXT COLLATE "C" GENERATED ALWAYS AS ({_AUDIT_FIELD.format("kind")}) STORED,
            time       TEXT COLLATE "C" GENERATED ALWAYS AS ({_AUDIT_FIELD.format("time")}) STORED,
            caller     TEXT COLLATE "C" GENERATED ALWAYS AS ({_AUDIT_FIELD.format("caller")}) STORED,
            actor      TEXT COLLATE "C" GENERATED ALWAYS AS ({_AUDIT_FIELD.format("actor")}) STORED,
            resource   TEXT COLLATE "C" GENERATED ALWAYS AS ({_AUDIT_FIELD.format("resource")}) STORED,
            permission TEXT COLLATE "C" GENERATED ALWAYS AS ({_AUDIT_FIELD.format("permission")}) STORED,
            subject    TEXT COLLATE "C" GENERATED ALWAYS AS ({_AUDIT_FIELD.format("subject")}) STORED,
            result     TEXT COLLATE "C" GENERATED ALWAYS AS ({_AUDIT_FIELD.format("result")}) STORED,
            revision   BIGINT GENERATED ALWAYS AS (({_AUDIT_FIELD.format("revision")})::bigint) STORED
        )
        """,
        # Each filter's index ends with the id, so a page in chain order is one index range.
        "CREATE INDEX audit_records_by_time ON audit_records (time, id)",
        "CREATE INDEX audit_records_by_kind ON audit_records (kind, id)",
        "CREATE INDEX audit_records_by_subject ON audit_records (subject, id)",
        "CREATE INDEX audit_records_by_resource ON audit_records (resource, id)",
        "CREATE INDEX audit_records_by_revision ON audit_records (revision, id)",
        # Records appended so far (= the last id) and the last hash; `mac` is HMAC(key, "count:hash") when the
        # log has a key, else ''. Every append holds this row (SELECT ... FOR UPDATE) until it commits.
        """
        CREATE TABLE audit_head (
            one   INTEGER PRIMARY KEY CHECK (one = 1),
            count BIGINT NOT NULL,
            hash  TEXT NOT NULL,
            mac   TEXT NOT NULL
        )
        """,
        # The log's random id, which every audited write names in its revision's metadata (audit/binding.py).
        """
        CREATE TABLE audit_identity (
            one     INTEGER PRIMARY KEY CHECK (one = 1),
            log_id  TEXT NOT NULL,
            created TEXT NOT NULL
        )
        """,
    ),
)

# The garbage collector's read of the relationships that expired without being deleted (as SQLite's migration
# 4): only live rows with an expiration, so writes of other rows never touch it.
_EXPIRING = Migration(
    3,
    "index of the relationships that expire",
    ("CREATE INDEX relationships_expiring ON relationships (expires_at_us) WHERE deleted_rev IS NULL AND expires_at_us IS NOT NULL",),
)

MIGRATIONS: tuple[Migration, ...] = (_INITIAL, _AUDIT, _EXPIRING)
LATEST_VERSION: int = MIGRATIONS[-1].version
