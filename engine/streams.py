"""Listing and moving many relationships: cursored reads, export, import and watch.

Each function takes an :class:`~headwater.engine.Engine`; the Engine has a method
of the same name that calls it (``engine.read_relationships(...)`` and so on).

- :func:`read_relationships` lists matching relationships a page at a time, in key
  order (resource type, resource id, relation, subject type, subject id, subject
  relation with "none" first; ids compare by code point, so ``doc-10`` sorts
  before ``doc-2`` as in SpiceDB). Every page of one listing reads the revision
  of its first page, so the pages concatenate to the listing exactly once.
- :func:`export_relationships` streams every matching relationship at one
  revision, in the same order, reading the store in batches.
- :func:`import_relationships` streams relationships in, one atomic CREATE write
  per batch (SpiceDB's BulkImport semantics: a relationship that already exists
  is an error). A failing batch writes nothing; the batches before it stay
  committed, and the error says which.
- :func:`watch` returns the relationship changes after a revision; :func:`follow`
  keeps polling for new ones.

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
    >>> result = engine.import_relationships(["doc:1#viewer@user:ann", "doc:2#viewer@user:bob"])
    >>> result.count, result.batches
    (2, 1)
    >>> page = engine.read_relationships(limit=1)
    >>> [str(r) for r in page.relationships], page.cursor is not None
    (['doc:1#viewer@user:ann'], True)
    >>> [str(r) for r in engine.read_relationships(limit=1, cursor=page.cursor).relationships]
    ['doc:2#viewer@user:bob']
    >>> [(e.operation.name, str(e.relationship)) for e in engine.watch(result.token)]
    []
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING

from .consistency import Consistency, decode_cursor, decode_token, encode_cursor, encode_token
from .errors import (
    ImportFailedError,
    AlreadyExistsError,
    EngineError,
    InvalidRequestError,
    LimitExceededError,
    RevisionUnavailableError,
)
from .relationships import ObjectRef, Relationship, RelationshipKey, SubjectRef, parse_relationship
from .store import Operation, RelationshipFilter, Revision, Update
from .validation import validate_relationship

if TYPE_CHECKING:
    from .api import Engine

__all__ = [
    "ImportFailedError",
    "ImportProgress",
    "ImportResult",
    "ReadPage",
    "RelationshipExport",
    "WatchEvent",
    "export_relationships",
    "follow",
    "import_relationships",
    "read_relationships",
    "watch",
]


# ------------------------------------------------------------------ values


@dataclass(frozen=True, slots=True)
class ReadPage:
    """A page of ReadRelationships: ``cursor`` is None when the listing is complete."""

    relationships: list[Relationship]
    cursor: str | None
    token: str


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Where an import stands after a committed batch (passed to the ``progress`` callback)."""

    batches: int  # batches committed so far
    relationships: int  # relationships committed so far
    seconds: float  # since the import started
    rate: float  # relationships per second so far
    token: str  # the revision of the last committed batch


@dataclass(frozen=True, slots=True)
class ImportResult:
    """A finished import: how many relationships in how many batches, the last revision, and how long."""

    count: int
    batches: int
    token: str  # the revision of the last batch (the head before the import if nothing was imported)
    seconds: float

    @property
    def rate(self) -> float:
        """Relationships per second."""
        return self.count / self.seconds if self.seconds > 0 else float(self.count)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One relationship change: at which revision (as a token), TOUCH or DELETE, and the relationship."""

    token: str
    operation: Operation
    relationship: Relationship

    @property
    def revision(self) -> int:
        return decode_token(self.token)


# ------------------------------------------------------------------ reads


def read_relationships(engine: Engine, filter: RelationshipFilter | None = None, *,
                       consistency: Consistency | None = None, limit: int | None = None,
                       cursor: str | None = None) -> ReadPage:
    """A page of at most ``limit`` relationships matching ``filter``, in key order, with a cursor to continue.

    Pass the returned ``cursor`` (and the same filter) to get the next page; it is
    None once the listing is complete (never an empty last page to fetch). The
    cursor pins the revision of the first page, so the pages concatenate to the
    listing at that revision exactly once, whatever is written meanwhile; with a
    cursor, ``consistency`` is ignored. Errors: a malformed cursor, or one from
    another filter, is an :class:`InvalidRequestError`; a cursor whose revision
    has been garbage-collected is a :class:`RevisionUnavailableError`.

    Example::

        >>> from headwater.engine import Engine
        >>> from headwater.engine.store.memory import MemoryStore
        >>> engine = Engine(MemoryStore())
        >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
        >>> _ = engine.touch("doc:1#viewer@user:ann", "doc:1#viewer@user:bob", "doc:1#viewer@user:cat")
        >>> first = engine.read_relationships(RelationshipFilter(resource_type="doc"), limit=2)
        >>> len(first.relationships), first.cursor is None
        (2, False)
        >>> rest = engine.read_relationships(RelationshipFilter(resource_type="doc"), limit=2, cursor=first.cursor)
        >>> [str(r) for r in rest.relationships], rest.cursor
        (['doc:1#viewer@user:cat'], None)
    """
    filter = _filter(filter)
    _check_positive("limit", limit)
    query = _query("read", filter)
    after: RelationshipKey | None = None
    if cursor is not None:
        revision, after_text = decode_cursor(cursor, query)
        after = _key_from_text(after_text)
        consistency = Consistency.at_exact_snapshot(encode_token(revision))
    with engine._snapshot(consistency) as (reader, _):
        found = reader.read(filter, after=after, limit=None if limit is None else limit + 1)
        token = encode_token(reader.revision)
        next_cursor = None
        if limit is not None and len(found) > limit:
            found = found[:limit]
            next_cursor = encode_cursor(reader.revision, _key_text(found[-1].key), query)
    return ReadPage(found, next_cursor, token)


class RelationshipExport:
    """Every relationship matching a filter at one revision: iterate it, or call :meth:`pages`.

    The revision (``token``) is fixed when the export is created, and so is the
    moment used to hide expired relationships; iterating reads the store one
    batch at a time (each in its own short snapshot), so writes may go on
    meanwhile without changing what the export yields. Iterating again reads the
    same revision again (a :class:`RevisionUnavailableError` once it has been
    garbage-collected).
    """

    __slots__ = ("_engine", "_filter", "_now", "batch_size", "revision", "token")

    def __init__(self, engine: Engine, filter: RelationshipFilter, revision: Revision, now: datetime,
                 batch_size: int) -> None:
        self._engine = engine
        self._filter = filter
        self._now = now
        self.batch_size = batch_size
        self.revision = revision
        self.token = encode_token(revision)

    def pages(self) -> Iterator[list[Relationship]]:
        """The relationships in key order, as non-empty lists of at most ``batch_size``."""
        after: RelationshipKey | None = None
        while True:
            with self._engine.store.snapshot(self.revision, now=self._now) as reader:
                batch = reader.read(self._filter, after=after, limit=self.batch_size)
            if batch:
                yield batch
            if len(batch) < self.batch_size:
                return
            after = batch[-1].key

    def __iter__(self) -> Iterator[Relationship]:
        for page in self.pages():
            yield from page

    def __repr__(self) -> str:
        return f"RelationshipExport(filter=({self._filter}), token={self.token!r}, batch_size={self.batch_size})"


def export_relationships(engine: Engine, filter: RelationshipFilter | None = None, *,
                         consistency: Consistency | None = None, batch_size: int = 1000) -> RelationshipExport:
    """Every relationship matching ``filter`` (default: all) at one revision, streamed in batches.

    The revision is chosen now (by ``consistency``, default the newest) and is
    available as ``.token`` before iterating; errors in the arguments are raised
    here, not on first iteration.

    Example::

        >>> from headwater.engine import Engine
        >>> from headwater.engine.store.memory import MemoryStore
        >>> engine = Engine(MemoryStore())
        >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
        >>> _ = engine.touch("doc:2#viewer@user:bob", "doc:1#viewer@user:ann")
        >>> export = engine.export_relationships(batch_size=1)
        >>> _ = engine.touch("doc:3#viewer@user:cat")     # after the export's revision: not in it
        >>> [str(r) for r in export], export.token.startswith("hw1_")
        (['doc:1#viewer@user:ann', 'doc:2#viewer@user:bob'], True)
    """
    filter = _filter(filter)
    _check_positive("batch_size", batch_size, required=True)
    now = engine.clock()
    with engine._snapshot(consistency) as (reader, _):
        revision = reader.revision
    return RelationshipExport(engine, filter, revision, now, batch_size)


# ------------------------------------------------------------------ import


def import_relationships(engine: Engine, relationships: Iterable[Relationship | str], *, batch_size: int = 1000,
                         progress: Callable[[ImportProgress], None] | None = None, actor: str | None = None,
                         reason: str | None = None) -> ImportResult:
    """Create relationships in atomic batches of ``batch_size``; a relationship that exists is an error.

    The input is read lazily, one item per line: a :class:`Relationship` or its
    SpiceDB text. Blank strings and ``//`` comments are skipped but counted, so
    the positions in errors are file lines when the input is an open file.
    Each batch is validated against the schema and written with CREATE in one
    transaction. If a batch fails (a line that does not parse, a relationship the
    schema refuses, one that already exists or appears twice), nothing of it is
    written and :class:`ImportFailedError` names the batch, the line and what the
    earlier batches committed. ``progress`` is called after each committed batch.
    ``batch_size`` may not exceed ``Config.max_updates_per_write``.

    Example::

        >>> from headwater.engine import Engine
        >>> from headwater.engine.store.memory import MemoryStore
        >>> engine = Engine(MemoryStore())
        >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
        >>> seen = []
        >>> result = engine.import_relationships(["doc:1#viewer@user:ann", "// a comment", "doc:1#viewer@user:bob",
        ...                                       "doc:1#viewer@user:cat"], batch_size=2, progress=seen.append)
        >>> result.count, result.batches, [p.relationships for p in seen]
        (3, 2, [2, 3])
        >>> try:
        ...     engine.import_relationships(["doc:2#viewer@user:ann", "doc:1#viewer@user:ann"])
        ... except ImportFailedError as e:
        ...     print(e.line, e.batch, e.committed)
        2 1 0
    """
    _check_positive("batch_size", batch_size, required=True)
    limit = engine.config.max_updates_per_write
    if batch_size > limit:
        raise LimitExceededError(f"batch_size {batch_size} is over the limit of {limit} updates per write "
                                 "(Config.max_updates_per_write)", limit=limit)
    started = time.monotonic()
    committed = batches = 0
    token: str | None = None
    batch: list[tuple[Relationship, int]] = []
    lines: dict[RelationshipKey, int] = {}

    def fail(exc: EngineError, line: int | None) -> ImportFailedError:
        where = f"line {line} (batch {batches + 1})" if line is not None else f"batch {batches + 1}"
        if batches:
            done = (f"batches 1-{batches} stay committed ({committed} relationship{'s' if committed != 1 else ''}, "
                    f"at {token})" if batches > 1 else
                    f"batch 1 stays committed ({committed} relationship{'s' if committed != 1 else ''}, at {token})")
        else:
            done = "nothing was committed"
        return ImportFailedError(f"import failed at {where}: {exc}; nothing of batch {batches + 1} was written; "
                                 f"{done}", batch=batches + 1, line=line, committed=committed,
                                 committed_batches=batches, token=token, cause=exc)

    def flush() -> None:
        nonlocal committed, batches, token
        try:
            result = engine.write([Update(Operation.CREATE, rel) for rel, _ in batch], actor=actor, reason=reason)
        except EngineError as exc:
            raise fail(exc, _failing_line(engine, exc, batch, lines)) from exc
        committed += len(batch)
        batches += 1
        token = result.token
        batch.clear()
        lines.clear()
        if progress is not None:
            seconds = time.monotonic() - started
            progress(ImportProgress(batches, committed, seconds, committed / seconds if seconds > 0 else
                                    float(committed), token))

    for position, item in enumerate(relationships, start=1):
        if isinstance(item, Relationship):
            rel = item
        elif isinstance(item, str):
            text = item.strip()
            if not text or text.startswith("//"):
                continue
            try:
                rel = parse_relationship(text)
            except EngineError as exc:
                raise fail(exc, position) from exc
        else:
            raise fail(InvalidRequestError(f"invalid import item {item!r}: must be a Relationship or its text"),
                       position)
        first = lines.get(rel.key)
        if first is not None:
            raise fail(InvalidRequestError(f"relationship {_key_text_plain(rel.key)!r} appears twice "
                                           f"(lines {first} and {position})"), position)
        lines[rel.key] = position
        batch.append((rel, position))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if token is None:
        token = encode_token(engine.store.head())
    return ImportResult(committed, batches, token, time.monotonic() - started)


def _failing_line(engine: Engine, exc: EngineError, batch: list[tuple[Relationship, int]],
                  lines: dict[RelationshipKey, int]) -> int | None:
    """The input line of the relationship that made a batch fail, when it can be told."""
    if isinstance(exc, AlreadyExistsError) and isinstance(exc.relationship, Relationship):
        return lines.get(exc.relationship.key)
    if not isinstance(exc, InvalidRequestError):
        return None
    try:
        schema = engine.schema()
    except EngineError:
        return None
    for rel, line in batch:
        try:
            validate_relationship(schema, rel, max_context_bytes=engine.config.max_caveat_context_bytes)
        except EngineError:
            return line
    return None


# ------------------------------------------------------------------ watch


def watch(engine: Engine, after_token: str, *, limit: int | None = None) -> list[WatchEvent]:
    """The relationship changes after the revision ``after_token`` names, oldest first.

    Changes come in whole revisions, ordered by revision then relationship key;
    with ``limit``, at most that many (but a first revision with more changes
    comes whole). Resume by passing the last event's token. Any revision inside
    the history window (``Config.gc_window``) can be resumed from; an older one
    raises :class:`RevisionUnavailableError` naming the oldest revision (and its
    token) to resume from instead. Schema writes are revisions without events.

    Example::

        >>> from headwater.engine import Engine
        >>> from headwater.engine.store.memory import MemoryStore
        >>> engine = Engine(MemoryStore())
        >>> start = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}").token
        >>> _ = engine.touch("doc:1#viewer@user:ann")
        >>> _ = engine.remove("doc:1#viewer@user:ann")
        >>> [(e.revision, e.operation.name, str(e.relationship)) for e in engine.watch(start)]
        [(2, 'TOUCH', 'doc:1#viewer@user:ann'), (3, 'DELETE', 'doc:1#viewer@user:ann')]
    """
    after = decode_token(after_token)
    _check_positive("limit", limit)
    try:
        changes = engine.store.changes(after, limit=limit)
    except RevisionUnavailableError as exc:
        if after > exc.head:
            message = (f"cannot watch after revision {after}: the newest revision is {exc.head} "
                       f"(token {encode_token(exc.head)})")
        else:
            message = (f"cannot watch after revision {after}: it has been garbage-collected; the oldest revision "
                       f"to resume from is {exc.oldest} (token {encode_token(exc.oldest)})")
        raise RevisionUnavailableError(message, revision=after, oldest=exc.oldest, head=exc.head) from exc
    return [WatchEvent(encode_token(c.revision), c.operation, c.relationship) for c in changes]


def follow(engine: Engine, after_token: str, *, poll_interval: float = 0.5, timeout: float | None = None,
           stop: threading.Event | None = None, batch_size: int = 1000) -> Iterator[WatchEvent]:
    """Yield the changes after ``after_token``, then keep polling for new ones, until told to stop.

    Polls :func:`watch` (``batch_size`` changes at a time) and yields each event
    as it arrives; when there is nothing new it waits ``poll_interval`` seconds.
    It returns once ``timeout`` seconds have passed since it started (None: never)
    or once ``stop`` is set, both checked before every poll, so a reader that
    stops mid-way can resume from the last event's token. A revision that falls
    out of the history window while following raises RevisionUnavailableError.

    Example::

        >>> from headwater.engine import Engine
        >>> from headwater.engine.store.memory import MemoryStore
        >>> engine = Engine(MemoryStore())
        >>> start = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}").token
        >>> _ = engine.touch("doc:1#viewer@user:ann")
        >>> [str(e.relationship) for e in engine.follow(start, timeout=0.05, poll_interval=0.01)]
        ['doc:1#viewer@user:ann']
    """
    # Arguments are checked here, when follow() is called; the polling starts on the first next().
    decode_token(after_token)
    _check_positive("batch_size", batch_size, required=True)
    if not isinstance(poll_interval, int | float) or poll_interval < 0:
        raise InvalidRequestError(f"poll_interval must be zero or more seconds, got {poll_interval!r}")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
        raise InvalidRequestError(f"timeout must be zero or more seconds, or None, got {timeout!r}")
    return _follow(engine, after_token, poll_interval, timeout, stop, batch_size)


def _follow(engine: Engine, after: str, poll_interval: float, timeout: float | None, stop: threading.Event | None,
            batch_size: int) -> Iterator[WatchEvent]:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if stop is not None and stop.is_set():
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        events = watch(engine, after, limit=batch_size)
        for event in events:
            yield event
            after = event.token
        if events:
            continue
        wait = poll_interval if deadline is None else max(0.0, min(poll_interval, deadline - time.monotonic()))
        if stop is not None:
            stop.wait(wait)
        else:
            time.sleep(wait)


# ------------------------------------------------------------------ helpers


def _filter(filter: RelationshipFilter | None) -> RelationshipFilter:
    if filter is None:
        return RelationshipFilter()
    if not isinstance(filter, RelationshipFilter):
        raise InvalidRequestError(f"invalid relationship filter {filter!r}: must be a RelationshipFilter")
    return filter


def _check_positive(name: str, value: int | None, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequestError(f"{name} must be a positive integer, got {value!r}")


def _query(kind: str, filter: RelationshipFilter) -> str:
    """The fingerprint text a cursor is bound to: the kind of listing and every filter field."""
    return json.dumps([kind, {f.name: getattr(filter, f.name) for f in fields(filter)}], sort_keys=True)


def _key_text(key: RelationshipKey) -> str:
    resource, relation, subject = key
    return json.dumps([resource.type, resource.id, relation, subject.type, subject.id, subject.relation or ""],
                      separators=(",", ":"))


def _key_from_text(text: str) -> RelationshipKey:
    try:
        parts = json.loads(text)
        if not (isinstance(parts, list) and len(parts) == 6 and all(isinstance(p, str) for p in parts)):
            raise ValueError("shape")
        rtype, rid, relation, stype, sid, srel = parts
        return (ObjectRef(rtype, rid), relation, SubjectRef(stype, sid, srel or None))
    except (ValueError, EngineError) as exc:
        raise InvalidRequestError("malformed cursor") from exc


def _key_text_plain(key: RelationshipKey) -> str:
    resource, relation, subject = key
    return f"{resource}#{relation}@{subject}"
