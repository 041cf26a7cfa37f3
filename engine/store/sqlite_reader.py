"""The SQLite backend's reads: one snapshot is one read transaction (the reads themselves: :mod:`.sql_reader`).

The table is clustered by relationship key (``WITHOUT ROWID``, migration 3), so
an object's rows are one B-tree range. Without statistics SQLite's planner can
prefer a scan of a whole resource type in key order to an index lookup, so two
reads name their index (``INDEXED BY``).

Example::

    >>> import tempfile, pathlib
    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store import Operation, Update
    >>> from headwater.engine.store.sqlite import SqliteStore
    >>> with SqliteStore(pathlib.Path(tempfile.mkdtemp()) / "h.db") as store:
    ...     _ = store.write([Update(Operation.TOUCH, parse_relationship("doc:1#viewer@user:tom"))])
    ...     with store.snapshot() as reader:
    ...         reader.relationship("doc", "1", "viewer", "user", "tom", "").subject_id
    'tom'
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from ..sqlitedb import Connection, DriverError
from .contract import RelationshipFilter, Revision, unavailable
from .sql_reader import SqlReader

if TYPE_CHECKING:
    from .sqlite import _SqliteBackend

__all__ = ["SqliteReader", "SqliteSnapshot"]

_SELECT_BOUNDS = "SELECT (SELECT min(revision) FROM revisions), (SELECT max(revision) FROM revisions)"


class SqliteReader(SqlReader):
    """One snapshot: queries on a connection inside its read (or write) transaction."""

    MARK = "?"
    DRIVER_ERROR = DriverError

    def __init__(self, backend: _SqliteBackend, conn: Connection, revision: Revision, now_us: int) -> None:
        super().__init__(backend.large_objects, conn.cursor().execute, backend.translate, revision, now_us)

    @classmethod
    def subject_sets_table(cls) -> str:
        # On the table clustered by resource, the planner would read the whole relation.
        return "relationships INDEXED BY relationships_subject_sets"

    @classmethod
    def table_for(cls, filter: RelationshipFilter) -> str:
        """``relationships``, with the subject index named when the filter gives an exact subject and no resource
        id: the table is clustered by resource, and without statistics SQLite's planner would rather scan every
        row of the resource type in key order than look the subject up."""
        if filter.subject_type is not None and filter.subject_id is not None and filter.resource_id is None \
                and filter.resource_id_prefix is None:
            return "relationships INDEXED BY relationships_by_subject"
        return "relationships"


class SqliteSnapshot:
    """``snapshot()``: a read transaction on this thread's idle connection, as a reader.

    Written out flat (connection, BEGIN, bounds, COMMIT, connection back) rather than as nested
    generator context managers: a check opens one per call, and those cost more than the transaction.
    """

    __slots__ = ("_backend", "_revision", "_now_us", "_conn", "_idle", "_reader")

    def __init__(self, backend: _SqliteBackend, revision: Revision | None, now_us: int) -> None:
        self._backend = backend
        self._revision = revision
        self._now_us = now_us

    def __enter__(self) -> SqliteReader:
        backend = self._backend
        conn, idle = backend.checkout()
        self._conn, self._idle = conn, idle
        try:
            conn.execute("BEGIN")
            oldest, head = conn.execute(_SELECT_BOUNDS).fetchone()
            at = head if self._revision is None else self._revision
            if not oldest <= at <= head:
                raise unavailable(at, oldest, head)
        except BaseException as exc:
            backend.checkin(conn, idle)
            if isinstance(exc, DriverError):
                raise backend.translate(exc, "read a snapshot") from exc
            raise
        self._reader = reader = SqliteReader(backend, conn, at, self._now_us)
        return reader

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._reader.close()
        try:
            if exc is None:
                try:
                    self._conn.execute("COMMIT")
                except DriverError as error:
                    raise self._backend.translate(error, "read a snapshot") from error
        finally:
            self._backend.checkin(self._conn, self._idle)
        if isinstance(exc, DriverError):
            raise self._backend.translate(exc, "read a snapshot") from exc
