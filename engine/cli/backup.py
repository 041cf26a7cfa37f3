"""``headwater backup create|restore``: a store in one file, and back (engine/backup.py).

With ``--db`` the backup reads the database at one revision and the restore writes into
an empty database, trusted (as a bootstrap is). With ``--server`` both go through the
server's ordinary calls: the backup reads the schema and exports at one revision; the
restore writes the schema and imports the relationships with ``--actor``/``--reason``,
declassifications last, so that each is authorized by the grants restored before it.
On a terminal a progress bar with the rate and the time left goes to stderr.

Example::

    $ headwater backup create store.backup.gz --db headwater.db
    backed up 41 relationships and schema version 1 at hw1_... to store.backup.gz
    $ headwater backup restore store.backup.gz --db restored.db
    restored 41 relationships and schema version 1 from store.backup.gz (at hw1_...)
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, TextIO

from tqdm import tqdm

from ...dsl import SchemaLimits, compile_schema
from .. import Engine
from ..backup import (BackupHeader, BackupReport, create, relationships_in_restore_order, restore, verify,
                      write_backup)
from ..consistency import Consistency, decode_token
from ..errors import InvalidRequestError, NotFoundError, PreconditionFailedError
from .shared import DB_OR_SERVER, SERVER, connect, engine_errors, open_engine, plural
from .table import EXIT_OK, Command, Group, arg


@contextlib.contextmanager
def _bar(err: TextIO, what: str) -> Iterator[Any]:
    """A progress bar on ``err`` when it is a terminal (else silent)."""
    with tqdm(desc=what, unit=" rel", unit_scale=True, file=err, disable=not err.isatty(), leave=False) as bar:
        yield bar


def _create_remote(client: Any, path: str, source: str, bar: Any) -> BackupReport:
    text, digest, token = client.read_schema()
    at = Consistency.at_exact_snapshot(token)
    exported = client.export_relationships(consistency=at)
    history = [{"version": v.version, "digest": v.digest, "token": v.token, "actor": v.actor}
               for v in client.schema_history() if decode_token(v.token) <= decode_token(token)]
    version = history[-1]["version"] if history else 0
    bar.total = len(exported.relationships)
    header = BackupHeader(datetime.now(timezone.utc).isoformat(timespec="seconds"), token, text, digest, version,
                          history, source)
    count = write_backup(path, header, exported, bar.update)
    return BackupReport(path, token, version, count)


@engine_errors
def _cmd_create(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    target = connect(args)
    with _bar(err, "backup") as bar:
        if isinstance(target, Engine):
            def total(n: int) -> None:
                bar.total = n
            report = create(target, args.file, source="database", progress=bar.update, total=total)
        else:
            report = _create_remote(target, args.file, f"server {args.server or 'of the context'}", bar)
    print(f"backed up {plural(report.relationships, 'relationship')} and schema version {report.schema_version} "
          f"at {report.token} to {args.file}", file=out)
    return EXIT_OK


def _restore_remote(client: Any, path: str, actor: str | None, reason: str | None, bar: Any) -> BackupReport:
    header, count = verify(path)
    try:
        stored = client.schema_history()
    except NotFoundError:  # a server before its first schema
        stored = []
    if stored:
        raise PreconditionFailedError("backup restore writes into an empty store only: this one holds a schema")
    schema = compile_schema(header.schema_text, limits=SchemaLimits.unlimited())
    declassify = schema.declassify_relations
    declassifications = sum(1 for rel in relationships_in_restore_order(path, schema)
                            if (rel.resource.type, rel.relation) in declassify)
    if declassifications and not actor:
        raise InvalidRequestError(f"the backup holds {plural(declassifications, 'declassification')}: through a "
                                  "server each is authorized, so give --actor (a subject holding their `by` "
                                  "permission) and --reason; nothing was written")
    client.write_schema(header.schema_text, actor=actor)
    bar.total = count

    def counted() -> Iterator[Any]:
        for rel in relationships_in_restore_order(path, schema):
            bar.update(1)
            yield rel

    result = client.import_relationships(counted(), actor=actor,
                                         reason=reason or f"restore from {path} (revision {header.token})")
    return BackupReport(path, result.token, header.schema_version, count)


@engine_errors
def _cmd_restore(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _bar(err, "restore") as bar:
        if args.server:
            report = _restore_remote(connect(args), args.file, args.actor, args.reason, bar)
        else:
            verify(args.file)  # a damaged file is refused before the database is even created
            engine = open_engine(args.db, create=True)
            try:
                report = restore(engine, args.file, progress=bar.update)
            finally:
                engine.close()
    print(f"restored {plural(report.relationships, 'relationship')} and schema version {report.schema_version} "
          f"from {args.file} (at {report.token})", file=out)
    return EXIT_OK


COMMANDS = (
    Group("backup", help="back up a store to one file, or restore one into an empty store",
          description="Back up or restore a whole store: schema, relationships and revision metadata.",
          help_when_bare=True),
    Command(
        "backup create", help="write the schema, relationships and revision metadata to one file",
        description="Back up the store at one revision: the schema in force and its history, every relationship "
                    "(caveats and expirations included) and the revision's token, in one file (gzip-compressed if "
                    "FILE ends in .gz), ending with a count and a hash that `backup restore` checks. A progress bar "
                    "with the time left goes to stderr on a terminal.",
        args=(arg("file", metavar="FILE", help="the backup file to write"), DB_OR_SERVER, *SERVER),
        run=_cmd_create),
    Command(
        "backup restore", help="restore a backup file into an empty store",
        description="Check the whole backup (a truncated or altered file is refused before anything is written), "
                    "then write its schema and relationships into an empty store. With --db the restore is "
                    "trusted, as `serve --bootstrap` is (the revisions record the actor `restore`); with --server "
                    "it uses the ordinary calls, so declassifications need --actor (with their `by` permission) "
                    "and --reason, and are written last.",
        args=(arg("file", metavar="FILE", help="the backup file to read"), DB_OR_SERVER, *SERVER,
              arg("--actor", help="with --server: who restores (needed for declassifications)"),
              arg("--reason", help="with --server: why (default: restore from FILE)")),
        run=_cmd_restore),
)
