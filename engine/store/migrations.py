"""The SQLite store's table definitions, as numbered migrations applied in order.

``SqliteStore`` runs them with :meth:`~headwater.engine.sqlitedb.SqliteFile.migrate`
(the SQLite helper shared with the audit log): at open and inside one ``BEGIN
IMMEDIATE`` transaction, every migration whose version is above the highest one
recorded in ``schema_migrations`` (:data:`MIGRATIONS_TABLE`), recording each.
Running it again changes nothing. A database whose recorded version is above
``LATEST_VERSION`` was written by a newer Headwater and is refused. Released
migrations are never edited: a change to the tables is a new migration at the
end of ``MIGRATIONS``.

Example::

    >>> [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    True
"""

from __future__ import annotations

from ..sqlitedb import Migration

__all__ = ["LATEST_VERSION", "MIGRATIONS", "MIGRATIONS_TABLE", "MIGRATIONS_TABLE_NAME", "Migration"]

MIGRATIONS_TABLE_NAME = "schema_migrations"
"""The table recording the applied migrations."""

MIGRATIONS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE_NAME} (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL          -- ISO 8601, UTC
)
"""
"""Its definition (the migration runner creates the same table)."""

_INITIAL = Migration(
    1,
    "relationships, revisions and schemas",
    (
        # One row per write transaction. Revision 0 (the empty store) is inserted at open.
        """
        CREATE TABLE revisions (
            revision        INTEGER PRIMARY KEY,
            committed_at_us INTEGER NOT NULL,          -- microseconds since 1970-01-01T00:00:00Z
            metadata        TEXT NOT NULL DEFAULT '{}' -- JSON object of strings
        )
        """,
        "CREATE INDEX revisions_by_time ON revisions (committed_at_us)",
        # One row per version of a relationship. A row is visible at revision R when
        # created_rev <= R and (deleted_rev IS NULL or deleted_rev > R).
        """
        CREATE TABLE relationships (
            id               INTEGER PRIMARY KEY,
            resource_type    TEXT NOT NULL,
            resource_id      TEXT NOT NULL,
            relation         TEXT NOT NULL,
            subject_type     TEXT NOT NULL,
            subject_id       TEXT NOT NULL,
            subject_relation TEXT NOT NULL,     -- '' when the subject has no relation
            caveat_name      TEXT,              -- NULL when there is no caveat
            caveat_context   TEXT,              -- canonical JSON object
            expires_at_us    INTEGER,           -- NULL when it never expires
            created_rev      INTEGER NOT NULL,
            deleted_rev      INTEGER            -- NULL while not deleted
        )
        """,
        # Forward lookups (lookup, subjects, read order); a key gets at most one row per revision.
        """
        CREATE UNIQUE INDEX relationships_by_resource ON relationships (
            resource_type, resource_id, relation, subject_type, subject_id, subject_relation, created_rev
        )
        """,
        # At most one not-deleted row per key; also finds the row a write replaces.
        """
        CREATE UNIQUE INDEX relationships_live_key ON relationships (
            resource_type, resource_id, relation, subject_type, subject_id, subject_relation
        ) WHERE deleted_rev IS NULL
        """,
        # Reverse lookups (resources), ordered by resource id.
        """
        CREATE INDEX relationships_by_subject ON relationships (
            subject_type, subject_id, subject_relation, resource_type, relation, resource_id
        )
        """,
        # changes() and gc().
        "CREATE INDEX relationships_by_created_rev ON relationships (created_rev)",
        "CREATE INDEX relationships_by_deleted_rev ON relationships (deleted_rev)",
        """
        CREATE TABLE schemas (
            version  INTEGER PRIMARY KEY,       -- 1, 2, 3...
            revision INTEGER NOT NULL UNIQUE,   -- the revision that wrote it
            text     TEXT NOT NULL,
            digest   TEXT NOT NULL
        )
        """,
    ),
)

_SUBJECT_SETS = Migration(
    2,
    "index of subject-set subjects",
    (
        # Only rows whose subject is a subject set (group:eng#member): a check looking for the subject sets
        # of a relation with thousands of plain subjects (a clearance held by every user) reads just these.
        """
        CREATE INDEX relationships_subject_sets ON relationships (
            resource_type, resource_id, relation, subject_type, subject_id, subject_relation
        ) WHERE subject_relation != ''
        """,
    ),
)

_KEY = "resource_type, resource_id, relation, subject_type, subject_id, subject_relation"
_ALL_COLUMNS = f"{_KEY}, caveat_name, caveat_context, expires_at_us, created_rev, deleted_rev"

_CLUSTERED = Migration(
    3,
    "relationships clustered by resource",
    (
        # The same rows in a WITHOUT ROWID table whose primary key is the old relationships_by_resource index
        # (key + created_rev): the rows of one object sit together in key order, so reading an object is one
        # B-tree range instead of an index range plus one table lookup per row (a cold depth-8 check: -10%).
        # The other indexes are rebuilt as they were. One transaction: a failure leaves the old table.
        f"""
        CREATE TABLE relationships_clustered (
            resource_type    TEXT NOT NULL,
            resource_id      TEXT NOT NULL,
            relation         TEXT NOT NULL,
            subject_type     TEXT NOT NULL,
            subject_id       TEXT NOT NULL,
            subject_relation TEXT NOT NULL,     -- '' when the subject has no relation
            caveat_name      TEXT,              -- NULL when there is no caveat
            caveat_context   TEXT,              -- canonical JSON object
            expires_at_us    INTEGER,           -- NULL when it never expires
            created_rev      INTEGER NOT NULL,
            deleted_rev      INTEGER,           -- NULL while not deleted
            PRIMARY KEY ({_KEY}, created_rev)
        ) WITHOUT ROWID
        """,
        f"INSERT INTO relationships_clustered ({_ALL_COLUMNS}) SELECT {_ALL_COLUMNS} FROM relationships",
        "DROP TABLE relationships",
        "ALTER TABLE relationships_clustered RENAME TO relationships",
        f"CREATE UNIQUE INDEX relationships_live_key ON relationships ({_KEY}) WHERE deleted_rev IS NULL",
        """
        CREATE INDEX relationships_by_subject ON relationships (
            subject_type, subject_id, subject_relation, resource_type, relation, resource_id
        )
        """,
        "CREATE INDEX relationships_by_created_rev ON relationships (created_rev)",
        "CREATE INDEX relationships_by_deleted_rev ON relationships (deleted_rev)",
        f"CREATE INDEX relationships_subject_sets ON relationships ({_KEY}) WHERE subject_relation != ''",
        # Statistics for the planner (about 1 s per million relationships): with the table clustered by
        # resource, a guess without them would scan a whole resource type rather than use the subject index.
        "ANALYZE relationships",
    ),
)

# The garbage collector's read of the relationships that expired without being deleted: without it, each run
# scanned the table under the write lock (170-230 ms for 300,000 relationships), with it a run that finds
# nothing takes under a millisecond. Only live rows with an expiration are in it: other writes never touch it.
_EXPIRING = Migration(
    4,
    "index of the relationships that expire",
    ("CREATE INDEX relationships_expiring ON relationships (expires_at_us) WHERE deleted_rev IS NULL AND expires_at_us IS NOT NULL",),
)

MIGRATIONS: tuple[Migration, ...] = (_INITIAL, _SUBJECT_SETS, _CLUSTERED, _EXPIRING)
LATEST_VERSION: int = MIGRATIONS[-1].version
