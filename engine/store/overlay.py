"""A reader that shows a snapshot as a pending batch of updates would leave it: the batch's own view.

Inside a write transaction the store's reader shows the revision the write starts from.
Some rules are about the state the batch makes: a declassification written together with
the grant that authorizes it (a steward made in the same batch) is authorized against the
batch (:mod:`..writes`). :class:`BatchView` answers the :class:`~.contract.Reader` reads
over the base reader with the batch applied: a deleted relationship is gone, a created or
touched one is there (replacing the stored row of its key), and a row expired at ``now``
stays hidden, as every reader hides it. Its results keep the contract's orders.

Example::

    >>> from datetime import datetime, timezone
    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store.memory import MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.write([Update(Operation.TOUCH, parse_relationship("doc:1#viewer@user:tom"))])
    >>> now = datetime.now(timezone.utc)
    >>> with store.snapshot(now=now) as reader:
    ...     view = BatchView(reader, [Update(Operation.DELETE, parse_relationship("doc:1#viewer@user:tom")),
    ...                               Update(Operation.TOUCH, parse_relationship("doc:1#viewer@user:ann"))], now)
    ...     [row.subject_id for row in view.relationships("doc", "1", "viewer")]
    ['ann']
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .contract import _EPOCH, _MICROSECOND, Operation, Reader, RelationshipFilter, Revision, Row, RowKey, \
    StoredSchema, Update

__all__ = ["BatchView"]


class BatchView:
    """``base`` with ``updates`` applied (a :class:`~.contract.Reader`); rows expired at ``now`` are hidden."""

    def __init__(self, base: Reader, updates: Sequence[Update], now: datetime) -> None:
        self._base = base
        now_us = (now - _EPOCH) // _MICROSECOND
        self._removed: set[RowKey] = set()  # keys the batch deletes or rewrites: their stored rows are hidden
        self._added: dict[RowKey, Row] = {}
        for u in updates:
            row = Row.of(u.relationship)
            self._removed.add(row.key)
            if u.operation is Operation.DELETE:
                self._added.pop(row.key, None)
            elif row.expires_at_us is None or row.expires_at_us > now_us:
                self._added[row.key] = row
            else:
                self._added.pop(row.key, None)

    @property
    def revision(self) -> Revision:
        return self._base.revision

    def _merge(self, stored: Sequence[Row], wanted: RelationshipFilter) -> list[Row]:
        rows = [r for r in stored if r.key not in self._removed]
        rows += [r for r in self._added.values() if wanted.matches_row(r)]
        rows.sort(key=lambda r: r.key)
        return rows

    def relationship(self, resource_type: str, resource_id: str, relation: str, subject_type: str,
                     subject_id: str, subject_relation: str) -> Row | None:
        key = (resource_type, resource_id, relation, subject_type, subject_id, subject_relation)
        if key in self._removed:
            return self._added.get(key)  # type: ignore[arg-type]
        return self._base.relationship(*key)

    def relationships(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Row]:
        return self._merge(self._base.relationships(resource_type, resource_id, relation), RelationshipFilter(
            resource_type=resource_type, resource_id=resource_id, relation=relation))

    def subject_sets(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Row]:
        merged = self._merge(self._base.subject_sets(resource_type, resource_id, relation), RelationshipFilter(
            resource_type=resource_type, resource_id=resource_id, relation=relation))
        return [r for r in merged if r.subject_relation]

    def read(self, filter: RelationshipFilter, *, after: RowKey | None = None,
             limit: int | None = None) -> list[Row]:
        # the stored rows are read whole (a batch is small, a filtered read bounded by the evaluator's needs), so
        # the batch's rows interleave in key order before ``after`` and ``limit`` apply
        rows = [r for r in self._merge(self._base.read(filter, after=after), filter)
                if after is None or r.key > after]
        return rows if limit is None else rows[:limit]

    def count(self, filter: RelationshipFilter) -> int:
        return len(self.read(filter))

    def schema(self) -> StoredSchema | None:
        return self._base.schema()
