"""Backups: a store's schema, relationships and revision metadata in one file, and its restore into an empty store.

The file is text (gzip-compressed when its name ends in ``.gz``), one item per line:

1. a header, a JSON object: ``format`` (``headwater-backup``), ``version`` (1), when it
   was made, the revision it shows (``token``, ``revision``), the schema in force there
   (``schema``: text, digest, version) and the schema's history (each version's digest,
   revision token and actor);
2. one relationship per line in Headwater's text form (caveat context and expiration
   included), in key order: what ``headwater import`` reads;
3. a footer, a JSON object ``{"end": {"relationships": N, "sha256": HEX}}``, the hash of
   the relationship lines, so a truncated or altered file is refused before anything is
   restored.

:func:`create` writes a backup of one revision (an export is pinned to it).
:func:`restore` verifies the whole file first, then writes into an empty store only:
the schema, then the relationships in atomic batches, trusted as a bootstrap is (the
operator restoring holds the database), with the actor ``restore`` and the file as the
reason on every revision. Through a server (``headwater backup restore --server``) the
CLI restores with the ordinary calls instead (:func:`relationships_in_restore_order`).

Example::

    >>> import tempfile, os
    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> source = Engine(MemoryStore())
    >>> _ = source.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
    >>> _ = source.touch("doc:1#viewer@user:ann", "doc:2#viewer@user:bob")
    >>> path = os.path.join(tempfile.mkdtemp(), "store.backup.gz")
    >>> create(source, path).relationships
    2
    >>> target = Engine(MemoryStore())
    >>> restore(target, path).relationships
    2
    >>> target.check("doc:2", "viewer", "user:bob").permissionship.name
    'HAS_PERMISSION'
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ..dsl import schema as dsl_schema
from .api import Engine
from .consistency import Consistency, decode_token
from .errors import InvalidRequestError, PreconditionFailedError
from .relationships import Relationship, parse_relationship
from .store import Operation, RelationshipFilter, Update

__all__ = ["FORMAT", "BackupHeader", "BackupReport", "create", "read_header", "relationships_in_restore_order",
           "restore", "verify", "write_backup"]

FORMAT = "headwater-backup"
VERSION = 1
RESTORE_ACTOR = "restore"


@dataclass(frozen=True, slots=True)
class BackupHeader:
    """The first line of a backup."""

    created_at: str
    token: str
    schema_text: str
    schema_digest: str
    schema_version: int
    schema_history: list[dict[str, Any]]
    source: str

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "version": VERSION, "created_at": self.created_at, "token": self.token,
                           "revision": decode_token(self.token), "source": self.source,
                           "schema": {"text": self.schema_text, "digest": self.schema_digest,
                                      "version": self.schema_version},
                           "schema_history": self.schema_history},
                          sort_keys=True)

    @classmethod
    def from_json(cls, line: str, path: str) -> BackupHeader:
        try:
            data = json.loads(line)
            if data.get("format") != FORMAT:
                raise ValueError(f"not a Headwater backup (format {data.get('format')!r})")
            if data.get("version") != VERSION:
                raise ValueError(f"backup format version {data.get('version')!r} is not supported (this is {VERSION})")
            schema = data["schema"]
            return cls(data["created_at"], data["token"], schema["text"], schema["digest"], int(schema["version"]),
                       list(data.get("schema_history", [])), str(data.get("source", "")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidRequestError(f"{path}: line 1 is not a backup header: {exc}") from None


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What a backup or a restore covered: the file, the revision it shows, the schema version, the count."""

    path: str
    token: str
    schema_version: int
    relationships: int


def _open(path: str | Path, mode: str) -> IO[str]:
    if str(path).endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, mode + "b"), encoding="utf-8")  # type: ignore[arg-type]
    return open(path, mode, encoding="utf-8")  # noqa: SIM115 - the caller closes it


def write_backup(path: str | Path, header: BackupHeader, relationships: Iterable[Relationship],
                 progress: Callable[[int], None] | None = None) -> int:
    """Write a backup file (header, relationship lines, footer); the number of relationships written. On any
    failure the partial file is removed."""
    digest = hashlib.sha256()
    n = 0
    try:
        with _open(path, "w") as f:
            f.write(header.to_json() + "\n")
            for rel in relationships:
                line = f"{rel}\n"
                digest.update(line.encode())
                f.write(line)
                n += 1
                if progress is not None:
                    progress(1)
            f.write(json.dumps({"end": {"relationships": n, "sha256": digest.hexdigest()}}) + "\n")
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return n


def create(engine: Engine, path: str | Path, *, consistency: Consistency | None = None, source: str = "",
           progress: Callable[[int], None] | None = None, total: Callable[[int], None] | None = None) -> BackupReport:
    """Back up ``engine``'s store at one revision (``consistency``, default the head) to ``path``; ``total`` is
    told about how many relationships there are (for a progress bar), ``progress`` each one written."""
    export = engine.export_relationships(consistency=consistency)
    schema = engine.read_schema(Consistency.at_exact_snapshot(export.token))
    if total is not None:
        with engine.store.snapshot(decode_token(export.token)) as reader:
            total(reader.count(RelationshipFilter()))
    history = [{"version": v.version, "digest": v.digest, "token": v.token, "actor": v.actor}
               for v in engine.schema_history() if decode_token(v.token) <= decode_token(export.token)]
    header = BackupHeader(datetime.now(timezone.utc).isoformat(timespec="seconds"), export.token, schema.text,
                          schema.digest, schema.version, history, source)
    count = write_backup(path, header, export, progress)
    return BackupReport(str(path), export.token, schema.version, count)


def read_header(path: str | Path) -> BackupHeader:
    """The header of the backup at ``path``."""
    with _open(path, "r") as f:
        return BackupHeader.from_json(f.readline(), str(path))


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    with _open(path, "r") as f:
        f.readline()
        for number, line in enumerate(f, start=2):
            yield number, line


def verify(path: str | Path) -> tuple[BackupHeader, int]:
    """The header and the number of relationships, once the whole file is checked: every line parses, the footer
    is there and its count and hash match the relationship lines (a truncated or altered backup is refused)."""
    try:
        header = read_header(path)
        digest = hashlib.sha256()
        n, end = 0, None
        for number, line in _lines(path):
            if end is not None:
                raise InvalidRequestError(f"{path}:{number}: nothing may follow the footer")
            if line.startswith("{"):
                end = json.loads(line).get("end")
                if not isinstance(end, dict):
                    raise InvalidRequestError(f"{path}:{number}: not a footer")
                continue
            try:
                parse_relationship(line.rstrip("\n"))
            except InvalidRequestError as exc:
                raise InvalidRequestError(f"{path}:{number}: {exc}") from None
            digest.update(line.encode())
            n += 1
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequestError(f"{path}: cannot read the backup: {exc}") from None
    if end is None:
        raise InvalidRequestError(f"{path}: the backup has no footer: it is truncated (read {n} relationships)")
    if end.get("relationships") != n or end.get("sha256") != digest.hexdigest():
        raise InvalidRequestError(f"{path}: the backup does not match its footer ({n} relationships read, "
                                  f"{end.get('relationships')} written): it is damaged")
    return header, n


def relationships_in_restore_order(path: str | Path, schema: dsl_schema.Schema) -> Iterator[Relationship]:
    """The backup's relationships, declassifications last: restored through the ordinary (authorized) writes,
    each declassification then finds the grants its ``by`` permission reads already in place."""
    declassify = schema.declassify_relations
    later: list[Relationship] = []
    for _, line in _lines(path):
        if line.startswith("{"):
            continue
        rel = parse_relationship(line.rstrip("\n"))
        if (rel.resource.type, rel.relation) in declassify:
            later.append(rel)
        else:
            yield rel
    yield from later


def restore(engine: Engine, path: str | Path, *, progress: Callable[[int], None] | None = None) -> BackupReport:
    """Restore the backup at ``path`` into ``engine``'s store, which must be empty (see the module docstring)."""
    header, count = verify(path)
    if engine.schema_history():
        raise PreconditionFailedError("backup restore writes into an empty store only: this one holds a schema")
    engine.write_schema(header.schema_text, actor=RESTORE_ACTOR)
    reason = f"restore from {Path(path).name} (revision {header.token})"
    limit = engine.config.limits.max_updates_per_write
    batch: list[Update] = []
    token = engine.revision_token()
    for _, line in _lines(path):
        if line.startswith("{"):
            continue
        batch.append(Update(Operation.CREATE, parse_relationship(line.rstrip("\n"))))
        if len(batch) == limit:
            token = engine.write(batch, actor=RESTORE_ACTOR, reason=reason, trusted=True).token
            if progress is not None:
                progress(len(batch))
            batch = []
    if batch:
        token = engine.write(batch, actor=RESTORE_ACTOR, reason=reason, trusted=True).token
        if progress is not None:
            progress(len(batch))
    return BackupReport(str(path), token, header.schema_version, count)
