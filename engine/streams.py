"""Listing and moving many relationships: cursored reads, export, import and watch.

:class:`Streams` holds them for one engine; the Engine has a method of the same
name for each (``engine.read_relationships(...)`` and so on).

- ``read_relationships`` lists matching relationships a page at a time, in key
  order (resource type, resource id, relation, subject type, subject id, subject
  relation with "none" first; ids compare by code point, so ``doc-10`` sorts
  before ``doc-2`` as in SpiceDB). Every page of one listing reads the revision
  of its first page, so the pages concatenate to the listing exactly once.
- ``export_relationships`` streams every matching relationship at one revision,
  in the same order, reading the store in batches.
- ``import_relationships`` streams relationships in, one atomic CREATE write per
  batch (SpiceDB's BulkImport semantics: a relationship that already exists is
  an error). A failing batch writes nothing; the batches before it stay
  committed, and the error says which.
- ``watch`` returns the relationship changes after a revision; ``follow`` keeps
  polling for new ones.

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

An export is pinned to the revision it was made at; a failing import batch names
its line; a watch sees every change; follow keeps polling for new ones::

    >>> export = engine.export_relationships(batch_size=1)
    >>> _ = engine.touch("doc:3#viewer@user:cat")     # after the export's revision: not in it
    >>> [str(r) for r in export]
    ['doc:1#viewer@user:ann', 'doc:2#viewer@user:bob']
    >>> try:
    ...     engine.import_relationships(["doc:4#viewer@user:dan", "// a comment", "doc:1#viewer@user:ann"])
    ... except ImportFailedError as e:
    ...     print(e.line, e.batch, e.committed)
    3 1 0
    >>> _ = engine.remove("doc:3#viewer@user:cat")
    >>> [(e.revision, e.operation.name, str(e.relationship)) for e in engine.watch(result.token)]
    [(3, 'TOUCH', 'doc:3#viewer@user:cat'), (4, 'DELETE', 'doc:3#viewer@user:cat')]
    >>> [str(e.relationship) for e in engine.follow(result.token, timeout=0.05, poll_interval=0.01)]
    ['doc:3#viewer@user:cat', 'doc:3#viewer@user:cat']
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from datetime import datetime

from .consistency import Consistency, decode_token, encode_token
from .context import Context
from .errors import (
    AlreadyExistsError,
    EngineError,
    ImportFailedError,
    InvalidRequestError,
    LimitExceededError,
    RevisionUnavailableError,
)
from .paging import Place, validate_limit
from .relationships import Relationship, RelationshipKey, parse_relationship
from .results import ImportProgress, ImportResult, ReadPage, WatchEvent
from .store import Operation, RelationshipFilter, Revision, Row, RowKey, Update
from .validation import validate_relationship
from .writes import Writes

__all__ = ["RelationshipExport", "Streams"]

#: What an import does with a relationship that is already stored (see :meth:`Streams.import_relationships`).
_EXISTING = ("error", "touch", "skip")


class RelationshipExport:
    """Every relationship matching a filter at one revision: iterate it, or call :meth:`pages`.

    The revision (``token``) is fixed when the export is created, and so is the
    moment used to hide expired relationships; iterating reads the store one
    batch at a time (each in its own short snapshot), so writes may go on
    meanwhile without changing what the export yields. Iterating again reads the
    same revision again (a :class:`RevisionUnavailableError` once it has been
    garbage-collected).
    """

    __slots__ = ("_ctx", "_filter", "_now", "batch_size", "revision", "token")

    def __init__(self, ctx: Context, filter: RelationshipFilter, revision: Revision, now: datetime,
                 batch_size: int) -> None:
        self._ctx = ctx
        self._filter = filter
        self._now = now
        self.batch_size = batch_size
        self.revision = revision
        self.token = encode_token(revision)

    def pages(self) -> Iterator[list[Relationship]]:
        """The relationships in key order, as non-empty lists of at most ``batch_size``."""
        after: RowKey | None = None
        while True:
            self._ctx.budget().checkpoint()  # a page at a time: the deadline, the caller (not the work limit)
            started = time.perf_counter()
            try:
                with self._ctx.store.snapshot(self.revision, now=self._now) as reader:
                    batch = reader.read(self._filter, after=after, limit=self.batch_size)
            finally:
                self._ctx.count_store("read", started)
            if batch:
                yield [row.relationship() for row in batch]
            if len(batch) < self.batch_size:
                return
            after = batch[-1].key

    def __iter__(self) -> Iterator[Relationship]:
        for page in self.pages():
            yield from page

    def __repr__(self) -> str:
        return f"RelationshipExport(filter=({self._filter}), token={self.token!r}, batch_size={self.batch_size})"


class Streams:
    """Listings, export, import and watch over one engine's :class:`~.context.Context` (imports write through
    its :class:`~.writes.Writes`)."""

    def __init__(self, ctx: Context, writes: Writes) -> None:
        self.ctx = ctx
        self.writes = writes

    # --- reads --------------------------------------------------------------------------

    def read_relationships(self, filter: RelationshipFilter | None = None, *,
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
        """
        filter = _filter(filter)
        validate_limit(limit)
        place = Place.start(_query("read", filter), cursor, consistency)
        after = None if place.after is None else _key_from_text(place.after)
        with self.ctx.snapshot(place.consistency) as (reader, _):
            found = reader.read(filter, after=after, limit=None if limit is None else limit + 1)
            page, next_cursor = place.page(found, limit, revision=reader.revision, position=_key_text)
            return ReadPage([row.relationship() for row in page], next_cursor, encode_token(reader.revision))

    def read(self, filter: RelationshipFilter, *, consistency: Consistency | None = None,
             limit: int | None = None) -> tuple[list[Relationship], str]:
        """Relationships matching ``filter`` in key order (at most ``limit``), with the revision token."""
        with self.ctx.snapshot(consistency) as (reader, _):
            return [row.relationship() for row in reader.read(filter, limit=limit)], encode_token(reader.revision)

    def export_relationships(self, filter: RelationshipFilter | None = None, *,
                             consistency: Consistency | None = None, batch_size: int = 1000) -> RelationshipExport:
        """Every relationship matching ``filter`` (default: all) at one revision, streamed in batches.

        The revision is chosen now (by ``consistency``, default the newest) and is
        available as ``.token`` before iterating; errors in the arguments are raised
        here, not on first iteration.
        """
        filter = _filter(filter)
        validate_limit(batch_size, "batch_size", required=True)
        now = self.ctx.clock()
        with self.ctx.snapshot(consistency) as (reader, _):
            revision = reader.revision
        return RelationshipExport(self.ctx, filter, revision, now, batch_size)

    # --- import -------------------------------------------------------------------------

    def import_relationships(self, relationships: Iterable[Relationship | str], *, batch_size: int = 1000,
                             progress: Callable[[ImportProgress], None] | None = None, actor: str | None = None,
                             reason: str | None = None, existing: str = "error") -> ImportResult:
        """Create relationships in atomic batches of ``batch_size``; a relationship that exists is an error.

        ``existing`` says what a relationship that is already stored does: ``"error"``
        (the default, CREATE), ``"touch"`` (TOUCH: written again, with the file's caveat
        and expiration) or ``"skip"`` (left as stored, not counted); with either of the
        last two a re-run of the same import is safe. A declassification in a batch is
        authorized against that batch (a steward granted in it counts).

        The input is read lazily, one item per line: a :class:`Relationship` or its
        SpiceDB text. Blank strings and ``//`` comments are skipped but counted, so
        the positions in errors are file lines when the input is an open file.
        Each batch is validated against the schema and written with CREATE in one
        transaction. If a batch fails (a line that does not parse, a relationship the
        schema refuses, one that already exists or appears twice), nothing of it is
        written and :class:`ImportFailedError` names the batch, the line and what the
        earlier batches committed. ``progress`` is called after each committed batch.
        ``batch_size`` may not exceed the ``max_import_batch`` limit (a batch is one write, which may hold that
        many updates).
        """
        validate_limit(batch_size, "batch_size", required=True)
        limit = self.ctx.config.limits.max_import_batch
        if batch_size > limit:
            raise LimitExceededError(f"batch_size {batch_size} is over the limit of {limit} relationships per "
                                     "import batch (max_import_batch)", limit=limit)
        if existing not in _EXISTING:
            raise InvalidRequestError(f"existing must be one of {', '.join(_EXISTING)}, got {existing!r}")
        return _Import(self, batch_size, progress, actor, reason, existing).run(relationships)

    # --- watch --------------------------------------------------------------------------

    def watch(self, after_token: str, *, limit: int | None = None) -> list[WatchEvent]:
        """The relationship changes after the revision ``after_token`` names, oldest first.

        Changes come in whole revisions, ordered by revision then relationship key;
        with ``limit``, at most that many (but a first revision with more changes
        comes whole). Resume by passing the last event's token. Any revision inside
        the history window (``gc_window``) can be resumed from; an older one raises
        :class:`RevisionUnavailableError` naming the oldest revision (and its token)
        to resume from instead. Schema writes are revisions without events.
        """
        after = decode_token(after_token)
        validate_limit(limit)
        started = time.perf_counter()
        try:
            changes = self.ctx.store.changes(after, limit=limit)
        except RevisionUnavailableError as exc:
            if after > exc.head:
                message = (f"cannot watch after revision {after}: the newest revision is {exc.head} "
                           f"(token {encode_token(exc.head)})")
            else:
                message = (f"cannot watch after revision {after}: it has been garbage-collected; the oldest "
                           f"revision to resume from is {exc.oldest} (token {encode_token(exc.oldest)})")
            raise RevisionUnavailableError(message, revision=after, oldest=exc.oldest, head=exc.head) from exc
        finally:
            self.ctx.count_store("changes", started)
        return [WatchEvent(encode_token(c.revision), c.operation, c.relationship) for c in changes]

    def follow(self, after_token: str, *, poll_interval: float = 0.5, timeout: float | None = None,
               stop: threading.Event | None = None, batch_size: int = 1000) -> Iterator[WatchEvent]:
        """Yield the changes after ``after_token``, then keep polling for new ones, until told to stop.

        Polls :meth:`watch` (``batch_size`` changes at a time) and yields each event
        as it arrives; when there is nothing new it waits ``poll_interval`` seconds.
        It returns once ``timeout`` seconds have passed since it started (None: never)
        or once ``stop`` is set, both checked before every poll, so a reader that
        stops mid-way can resume from the last event's token. A revision that falls
        out of the history window while following raises RevisionUnavailableError.
        """
        # Arguments are checked here, when follow() is called; the polling starts on the first next().
        decode_token(after_token)
        validate_limit(batch_size, "batch_size", required=True)
        if not isinstance(poll_interval, int | float) or poll_interval < 0:
            raise InvalidRequestError(f"poll_interval must be zero or more seconds, got {poll_interval!r}")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
            raise InvalidRequestError(f"timeout must be zero or more seconds, or None, got {timeout!r}")
        return self._follow(after_token, poll_interval, timeout, stop, batch_size)

    def _follow(self, after: str, poll_interval: float, timeout: float | None, stop: threading.Event | None,
                batch_size: int) -> Iterator[WatchEvent]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if stop is not None and stop.is_set():
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            events = self.watch(after, limit=batch_size)
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


class _Import:
    """One import: the batch being built, what earlier batches committed, and the errors that name both."""

    def __init__(self, streams: Streams, batch_size: int, progress: Callable[[ImportProgress], None] | None,
                 actor: str | None, reason: str | None, existing: str = "error") -> None:
        self.streams, self.batch_size, self.progress = streams, batch_size, progress
        self.actor, self.reason = actor, reason
        self.existing = existing
        self.started = time.monotonic()
        self.committed = self.batches = 0
        self.token: str | None = None
        self.batch: list[tuple[Relationship, int]] = []
        self.lines: dict[RelationshipKey, int] = {}

    def run(self, relationships: Iterable[Relationship | str]) -> ImportResult:
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
                    raise self.fail(exc, position) from exc
            else:
                raise self.fail(InvalidRequestError(f"invalid import item {item!r}: must be a Relationship or its "
                                                    "text"), position)
            first = self.lines.get(rel.key)
            if first is not None:
                raise self.fail(InvalidRequestError(f"relationship {_key_text_plain(rel.key)!r} appears twice "
                                                    f"(lines {first} and {position})"), position)
            self.lines[rel.key] = position
            self.batch.append((rel, position))
            if len(self.batch) == self.batch_size:
                self.flush()
        if self.batch:
            self.flush()
        token = self.token if self.token is not None else encode_token(self.streams.ctx.store.head())
        return ImportResult(self.committed, self.batches, token, time.monotonic() - self.started)

    def flush(self) -> None:
        batch = self.batch
        if self.existing == "skip":
            batch = self._not_stored(batch)
        operation = Operation.TOUCH if self.existing == "touch" else Operation.CREATE
        try:
            if batch:
                result = self.streams.writes.write([Update(operation, rel) for rel, _ in batch],
                                                   actor=self.actor, reason=self.reason, limit=self.batch_size)
                self.token = result.token
        except EngineError as exc:
            raise self.fail(exc, self._failing_line(exc)) from exc
        self.committed += len(batch)
        self.batches += 1
        self.batch.clear()
        self.lines.clear()
        if self.progress is not None:
            seconds = time.monotonic() - self.started
            self.progress(ImportProgress(self.batches, self.committed, seconds,
                                         self.committed / seconds if seconds > 0 else float(self.committed),
                                         self.token))

    def _not_stored(self, batch: list[tuple[Relationship, int]]) -> list[tuple[Relationship, int]]:
        """The relationships of ``batch`` whose key is not stored at the head (a relationship written between
        this read and the batch's write still fails the batch: CREATE never overwrites)."""
        ctx = self.streams.ctx
        with ctx.snapshot(None) as (reader, _):
            return [(rel, line) for rel, line in batch if reader.relationship(*Row.of(rel).key) is None]

    def fail(self, exc: EngineError, line: int | None) -> ImportFailedError:
        batches, committed, token = self.batches, self.committed, self.token
        where = f"line {line} (batch {batches + 1})" if line is not None else f"batch {batches + 1}"
        relationships = f"{committed} relationship{'s' if committed != 1 else ''}"
        if batches:
            done = (f"batches 1-{batches} stay committed ({relationships}, at {token})" if batches > 1 else
                    f"batch 1 stays committed ({relationships}, at {token})")
        else:
            done = "nothing was committed"
        return ImportFailedError(f"import failed at {where}: {exc}; nothing of batch {batches + 1} was written; "
                                 f"{done}", batch=batches + 1, line=line, committed=committed,
                                 committed_batches=batches, token=token, cause=exc)

    def _failing_line(self, exc: EngineError) -> int | None:
        """The input line of the relationship that made a batch fail, when it can be told."""
        if isinstance(exc, AlreadyExistsError) and isinstance(exc.relationship, Relationship):
            return self.lines.get(exc.relationship.key)
        if not isinstance(exc, InvalidRequestError):
            return None
        ctx = self.streams.ctx
        try:
            with ctx.snapshot(None) as (_, schema):
                pass
        except EngineError:
            return None
        for rel, line in self.batch:
            try:
                validate_relationship(schema, rel, max_context_bytes=ctx.config.limits.max_caveat_context_bytes)
            except EngineError:
                return line
        return None


# ------------------------------------------------------------------ helpers


def _filter(filter: RelationshipFilter | None) -> RelationshipFilter:
    if filter is None:
        return RelationshipFilter()
    if not isinstance(filter, RelationshipFilter):
        raise InvalidRequestError(f"invalid relationship filter {filter!r}: must be a RelationshipFilter")
    return filter


def _query(kind: str, filter: RelationshipFilter) -> str:
    """The fingerprint text a cursor is bound to: the kind of listing and every filter field."""
    return json.dumps([kind, {f.name: getattr(filter, f.name) for f in fields(filter)}], sort_keys=True)


def _key_text(row: Row) -> str:
    return json.dumps(list(row.key), separators=(",", ":"))


def _key_from_text(text: str) -> RowKey:
    try:
        parts = json.loads(text)
        if not (isinstance(parts, list) and len(parts) == 6 and all(isinstance(p, str) for p in parts)):
            raise ValueError("shape")
    except ValueError as exc:
        raise InvalidRequestError("malformed cursor") from exc
    return tuple(parts)  # type: ignore[return-value]


def _key_text_plain(key: RelationshipKey) -> str:
    resource, relation, subject = key
    return f"{resource}#{relation}@{subject}"
