"""``headwater relationships touch|create|delete|read``, ``export``, ``import`` and ``watch``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from ...dsl import SchemaLimits, compile_schema
from .. import ImportFailedError, ImportProgress, RelationshipFilter
from ..errors import NotFoundError
from ..validationfile import default_root, load_validation_file
from .shared import (DB_OR_SERVER, OUTPUT_FILE, SERVER, connect, engine_errors, import_into, is_remote, json_flag,
                     output, plural, print_json, relationship_json)
from .table import EXIT_OK, EXIT_PROBLEMS, Command, Group, arg


@engine_errors
def _cmd_relationships_write(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rels = args.relationships
    if rels == ["-"]:
        rels = [ln.strip() for ln in sys.stdin if ln.strip() and not ln.strip().startswith("//")]
    with connect(args) as engine:
        fn = {"touch": engine.touch, "create": engine.create, "delete": engine.remove}[args.operation]
        result = fn(*rels, actor=args.actor, reason=args.reason)
    if args.json:
        print_json({"operation": args.operation, "count": len(rels), "token": result.token}, out)
        return EXIT_OK
    print(f"{args.operation}: {plural(len(rels), 'relationship')} at {result.token}", file=out)
    return EXIT_OK


@engine_errors
def _cmd_relationships_read(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    f = RelationshipFilter(resource_type=args.resource_type, resource_id=args.resource_id, relation=args.relation,
                           subject_type=args.subject_type, subject_id=args.subject_id)
    paged = args.page_size is not None or args.cursor is not None
    if paged and args.limit is not None:
        raise ValueError("give --limit, or --page-size/--cursor, not both")
    next_cursor = None
    with connect(args) as engine:
        if paged:
            page = engine.read_relationships(f, limit=args.page_size, cursor=args.cursor)
            rels, token, next_cursor = page.relationships, page.token, page.cursor
        else:
            rels, token = engine.read(f, limit=args.limit)
    for r in rels:
        if args.json:
            print_json(relationship_json(r), out)
        else:
            print(r, file=out)
    print(f"{plural(len(rels), 'relationship')} at {token}", file=err)
    if next_cursor is not None:
        print(f"next page: --cursor {next_cursor}", file=err)
    return EXIT_OK


@engine_errors
def _cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with connect(args) as engine:
        export = engine.export_relationships(RelationshipFilter(resource_type=args.resource_type))
        pages = [export.relationships] if is_remote(engine) else export.pages()  # a server's export comes whole
        n = 0
        with output(args.file, out) as target:
            for page in pages:
                for r in page:
                    print_json(relationship_json(r), target) if args.json else target.write(f"{r}\n")
                n += len(page)
    print(f"exported {plural(n, 'relationship')} at {export.token}", file=err)
    return EXIT_OK


def _existing(args: argparse.Namespace) -> str:
    """What the import does with a stored relationship: --touch, --skip-existing, or fail."""
    if args.touch and args.skip_existing:
        raise ValueError("give --touch or --skip-existing, not both")
    return "touch" if args.touch else "skip" if args.skip_existing else "error"


@engine_errors
def _cmd_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    existing = _existing(args)
    if args.file.endswith((".yaml", ".yml")):
        return _import_validation_file(args, existing, out, err)
    name = "<stdin>" if args.file == "-" else args.file
    source = getattr(sys.stdin, "buffer", sys.stdin) if args.file == "-" else Path(args.file).open("rb")
    total = None if args.file == "-" else Path(args.file).stat().st_size
    done = [0]  # bytes read so far: how far the bar is
    tty = err.isatty()

    def lines() -> Iterator[str]:  # one item per file line, so errors name the file line
        for raw in source:
            done[0] += len(raw)
            yield raw.decode("utf-8") if isinstance(raw, bytes) else raw

    try:
        with connect(args) as engine:
            result = import_into(engine, lines(), batch_size=args.batch_size,
                                 progress=_progress_printer(err, tty, total, done), actor=args.actor, reason=args.reason,
                                 **_existing_option(existing))
    except ImportFailedError as exc:
        if tty:
            err.write("\n")
        print(f"{name}:{exc.line}: {exc}" if exc.line is not None else f"{name}: {exc}", file=err)
        return EXIT_PROBLEMS
    finally:
        if args.file != "-":
            source.close()
    if tty and result.batches:
        err.write("\n")
    if args.json:
        print_json({"count": result.count, "batches": result.batches, "seconds": result.seconds,
                    "token": result.token}, out)
        return EXIT_OK
    print(f"imported {plural(result.count, 'relationship')} in {plural(result.batches, 'batch', 'es')} "
          f"({result.seconds:.1f}s, {result.rate:,.0f}/s) at {result.token}", file=out)
    return EXIT_OK


def _existing_option(existing: str) -> dict[str, str]:
    """The ``existing`` keyword when it is not the default (a client of an older server knows no such option)."""
    return {} if existing == "error" else {"existing": existing}


def _import_validation_file(args: argparse.Namespace, existing: str, out: TextIO, err: TextIO) -> int:
    """Import a validation file: its schema (unless the same text is stored), then its relationships."""
    documents = load_validation_file(args.file, root=default_root(args.file))
    if len(documents) != 1 or documents[0].schema_text is None:
        raise ValueError(f"{args.file}: a validation file to import holds one YAML document with a schema")
    (doc,) = documents
    declassify = compile_schema(doc.schema_text, limits=SchemaLimits.unlimited()).declassify_relations
    if not args.actor and any((rel.resource.type, rel.relation) in declassify for rel, _ in doc.relationships):
        raise ValueError(f"{args.file} holds declassifications: give --actor (a subject with their `by` permission, "
                         "in the store or granted in the same file) and --reason; nothing was written")
    with connect(args, create=True) as target:
        try:
            stored = target.read_schema()
            stored_text = stored[0] if isinstance(stored, tuple) else stored.text
        except NotFoundError:  # no schema yet
            stored_text = None
        schema_written = stored_text != doc.schema_text
        if schema_written:
            target.write_schema(doc.schema_text, actor=args.actor)
        try:
            result = import_into(target, (str(rel) for rel, _ in doc.relationships), batch_size=args.batch_size,
                                 progress=_progress_printer(err, err.isatty(), None, [0]), actor=args.actor,
                                 reason=args.reason, **_existing_option(existing))
        except ImportFailedError as exc:
            lines = [line for _, line in doc.relationships]
            where = f"{args.file}:{lines[exc.line - 1]}" if exc.line and exc.line <= len(lines) else args.file
            print(f"{where}: {exc}", file=err)
            return EXIT_PROBLEMS
    if args.json:
        print_json({"schema_written": schema_written, "count": result.count, "batches": result.batches,
                    "seconds": result.seconds, "token": result.token}, out)
        return EXIT_OK
    schema = "wrote the schema, " if schema_written else "the schema was already stored; "
    print(f"{schema}imported {plural(result.count, 'relationship')} in {plural(result.batches, 'batch', 'es')} "
          f"at {result.token}", file=out)
    return EXIT_OK


def _progress_printer(err: TextIO, tty: bool, total: int | None,
                      done: list[int]) -> Callable[[ImportProgress], None]:
    """Import progress on stderr: a bar on a terminal (``done[0]`` of ``total`` bytes read), else a line a batch."""
    def progress(p: ImportProgress) -> None:
        rate = f"{p.relationships:,} relationships, {plural(p.batches, 'batch', 'es')}, {p.rate:,.0f}/s"
        if not tty:
            print(f"batch {p.batches}: {rate}", file=err)
            return
        if total:
            filled = min(30, int(30 * done[0] / total))
            err.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done[0] / total:4.0%}  {rate}")
        else:
            err.write(f"\r{rate}")
        err.flush()
    return progress


@engine_errors
def _cmd_watch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    last, n = args.after, 0
    with connect(args) as engine:
        if is_remote(engine):  # the server polls; without --follow, what arrives within a moment
            events = engine.follow(args.after, timeout=args.timeout) if args.follow else engine.watch(args.after)
        else:
            events = (engine.follow(args.after, poll_interval=args.poll_interval, timeout=args.timeout)
                      if args.follow else engine.watch(args.after))
        for event in events:
            if args.json:
                print_json({"token": event.token, "operation": event.operation.name,
                            "relationship": str(event.relationship)}, out)
                out.flush()
            else:
                print(f"{event.token} {event.operation.name} {event.relationship}", file=out, flush=True)
            last, n = event.token, n + 1
    print(f"{plural(n, 'change')}; resume with --after {last}", file=err)
    return EXIT_OK


def _write_command(operation: str, what: str) -> Command:
    """``relationships touch``, ``create`` or ``delete``: one atomic write of the given relationships."""
    return Command(
        f"relationships {operation}", help=f"{what} relationships, atomically",
        description=f"{what.capitalize()} relationships in one atomic write.",
        args=(arg("relationships", nargs="+", metavar="REL",
                  help="e.g. document:readme#viewer@user:alice; '-' reads them from stdin, one per line"),
              DB_OR_SERVER,
              arg("--actor", help="who makes the change (kept with the revision)"),
              arg("--reason", help="why (kept with the revision)"),
              json_flag("print the operation, the count and the revision token as JSON"), *SERVER),
        run=_cmd_relationships_write, defaults={"operation": operation})


COMMANDS = (
    Group("relationships", help="write, delete or read relationships",
          description="Touch, create or delete relationships given as SpiceDB strings, or read them back."),
    _write_command("touch", "create or replace"),
    _write_command("create", "create (fail if one exists)"),
    _write_command("delete", "delete"),
    Command(
        "relationships read", help="print relationships matching a filter",
        description="Print relationships matching a filter, in key order.",
        args=(DB_OR_SERVER, arg("--resource-type"), arg("--resource-id"), arg("--relation"),
              arg("--subject-type"), arg("--subject-id"), arg("--limit", type=int),
              arg("--page-size", type=int, metavar="N",
                  help="print one page of at most N relationships; the cursor for the next page goes to stderr"),
              arg("--cursor", help="continue the listing a previous page's cursor belongs to (same filter)"),
              json_flag("print JSON lines: relationship, resource, relation, subject, caveat, expiration"),
              *SERVER),
        run=_cmd_relationships_read),
    Command(
        "export", help="write the relationships of a database or server, one per line",
        description="Write every relationship (or those of one resource type) at one revision to FILE, one per "
                    "line in SpiceDB's text form and in key order; `headwater import` reads the file back. A "
                    "summary with the revision token goes to stderr.",
        args=(OUTPUT_FILE, DB_OR_SERVER,
              arg("--resource-type", metavar="TYPE", help="only relationships whose resource has this type"),
              json_flag("write JSON lines (as `relationships read --json`) instead of text lines"), *SERVER),
        run=_cmd_export),
    Command(
        "import", help="create the relationships of a file, in atomic batches",
        description="Create the relationships in FILE (one per line; blank lines and // comments are skipped) in "
                    "atomic batches, each validated against the schema. A relationship that already exists (unless "
                    "--touch or --skip-existing) or that the schema refuses stops the import with FILE:LINE and "
                    "exit 1: its batch writes nothing and the earlier batches stay committed. A validation file "
                    "(.yaml/.yml, as `headwater validate` reads) brings its schema too. A declassification is "
                    "authorized against its batch: a steward granted in the same batch counts. Progress and the "
                    "rate go to stderr (a progress bar on a terminal, else one line per batch).",
        args=(arg("file", metavar="FILE",
                  help="relationships file ('-' reads stdin), or a validation file (.yaml/.yml: its schema, "
                       "written unless already stored, then its relationships)"), DB_OR_SERVER,
              arg("--batch-size", type=int, default=1000, metavar="N",
                  help="relationships per atomic write into a database (default 1000, at most max_import_batch, "
                       "100,000; a server writes batches of its own max_updates_per_write)"),
              arg("--touch", action="store_true",
                  help="write a relationship that is already stored again (with the file's caveat and "
                       "expiration) instead of failing: a re-run is safe"),
              arg("--skip-existing", action="store_true",
                  help="leave a relationship that is already stored as it is, and do not count it"),
              arg("--actor", help="who makes the change (kept with each batch's revision; a declassification "
                                  "needs it, with its `by` permission, in the store or in the same batch)"),
              arg("--reason", help="why (kept with each batch's revision)"),
              json_flag("print the count, batches, seconds and revision token as JSON"), *SERVER),
        run=_cmd_import),
    Command(
        "watch", help="print the relationship changes after a revision",
        description="Print each relationship change after the revision TOKEN names, oldest first, as "
                    "`TOKEN TOUCH|DELETE RELATIONSHIP`; resume from the last token printed. With --follow, keep "
                    "printing new changes until interrupted (or --timeout). A revision that has left the history "
                    "window is an error naming the oldest revision to resume from.",
        args=(DB_OR_SERVER, arg("--after", required=True, metavar="TOKEN", help="a revision token, e.g. printed by a write"),
              arg("--follow", action="store_true", help="keep polling for new changes"),
              arg("--timeout", type=float, metavar="SECONDS", help="with --follow, stop after this long"),
              arg("--poll-interval", type=float, default=0.5, metavar="SECONDS",
                  help="with --follow on a database, how long to wait when there is nothing new (default 0.5)"),
              json_flag("print JSON lines: token, operation, relationship"), *SERVER),
        run=_cmd_watch),
)
